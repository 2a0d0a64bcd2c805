// Errors shown where they belong: beside the field a `loc` names (or its nearest part), tied to
// it with aria-describedby, and listed in a summary whose entries lead to the fields.
import { el } from "./common.js";

export function fieldErrors(form, summary) {
  const slotOf = (loc) => form.querySelector(`[data-error-for="${CSS.escape(loc)}"]`);
  const inputOf = (loc) => form.querySelector(`[data-loc="${CSS.escape(loc)}"]`);

  function link(input, slot) {
    if (!slot.id) slot.id = `error-${Math.random().toString(36).slice(2)}`;
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(slot.id)) input.setAttribute("aria-describedby", [...described, slot.id].join(" "));
  }

  function linkAll(root) {
    for (const input of root.querySelectorAll("[data-loc]")) {
      const slot = slotOf(input.dataset.loc);
      if (slot) link(input, slot);
    }
  }

  function clear() {
    for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  // Show an error on the most specific part of the form that exists for `loc`.
  function set(loc, message) {
    const parts = loc.split(".");
    while (parts.length) {
      const key = parts.join(".");
      const slot = slotOf(key);
      if (slot) {
        slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
        const input = inputOf(key);
        if (input) input.setAttribute("aria-invalid", "true");
        return key;
      }
      parts.pop();
    }
    return null;
  }

  function labelOf(loc) {
    const input = inputOf(loc);
    if (!input || !input.id) return "";
    const label = form.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    return label ? label.textContent.replace("*", "").trim() : "";
  }

  function showSummary(title, errors) {
    const list = summary.querySelector("ul");
    summary.querySelector("h2").textContent = title;
    list.replaceChildren(
      ...errors.map((error) => {
        const input = error.loc ? inputOf(error.loc) : null;
        const text = error.label ? `${error.label}: ${error.message}` : error.message;
        return el("li", {}, input && input.id ? el("a", { href: `#${input.id}`, text }) : text);
      }),
    );
    summary.hidden = errors.length === 0;
    if (errors.length) summary.focus();
  }

  return { linkAll, clear, set, labelOf, showSummary };
}
