// The print button of the receipt (inline handlers are refused by the page's CSP).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
