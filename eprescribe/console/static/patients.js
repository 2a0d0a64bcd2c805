// The patient search shows only the fields of the chosen way to search (all of them without script).
const form = document.querySelector(".patient-search");
if (form) {
  const show = () => {
    const by = form.querySelector('input[name="by"]:checked')?.value || "national_id";
    for (const field of form.querySelectorAll("[data-by]")) field.hidden = field.dataset.by !== by;
  };
  form.addEventListener("change", show);
  show();
}
