// Marks the prescriber whose unsent prescription is kept in this browser, so signing in again
// after a session ended leads straight back to it.
import { readJson, translator } from "../erx/i18n.js";

const t = translator(readJson("console-text"), "console.js.");
const list = document.querySelector("[data-facility]");
if (list) {
  const prefix = `erx.rx-draft.v1.${list.dataset.facility}.`;
  for (const button of list.querySelectorAll("button[data-prescriber]")) {
    if (localStorage.getItem(prefix + button.dataset.prescriber)) {
      const note = document.createElement("span");
      note.className = "badge kind-y";
      note.dataset.draft = "true";
      note.textContent = t("draft_waiting");
      button.append(note);
    }
  }
}
