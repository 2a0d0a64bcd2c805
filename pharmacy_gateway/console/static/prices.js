// Shows the chosen file's name beside the page's own "choose a file" button.
const input = document.getElementById("price-file");
const name = document.getElementById("price-file-name");
if (input && name) {
  input.addEventListener("change", () => {
    name.textContent = input.files && input.files.length ? input.files[0].name : name.dataset.empty;
  });
}
