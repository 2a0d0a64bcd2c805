// Enrolment: create a non-extractable signing key in this browser and show its public JWK.
import { formatMoment } from "../erx/i18n.js";
import { createKey, cryptoAvailable, deleteKey, findKeyFor, listKeys } from "./keystore.js";
import { el, readJson, translator } from "./common.js";

const page = readJson("console-page");
const t = translator(readJson("console-text"), "console.js.");

const createButton = document.getElementById("create-key");
const newKey = document.getElementById("new-key");
const jwkBox = document.getElementById("public-jwk");
const thumb = document.getElementById("key-thumbprint");
const copyButton = document.getElementById("copy-jwk");
const copyStatus = document.getElementById("copy-status");
const localList = document.getElementById("local-keys");
const registeredStatus = document.getElementById("registered-status");

function showKey(record) {
  jwkBox.value = JSON.stringify(record.publicJwk, null, 2);
  thumb.textContent = record.thumbprint;
  newKey.hidden = false;
}

async function refresh() {
  const keys = await listKeys();
  const matching = page.registered_jwk ? await findKeyFor(page.registered_jwk) : null;
  if (!page.prescriber_id) registeredStatus.textContent = t("enrol.no_prescriber");
  else registeredStatus.textContent = matching ? t("enrol.registered") : t("enrol.not_registered");
  localList.replaceChildren(
    ...keys.map((record) =>
      el(
        "li",
        { "data-key": record.id, class: matching && matching.id === record.id ? "registered" : "" },
        el("span", { class: "mono small", text: record.thumbprint }),
        el("span", { class: "muted small", text: formatMoment(record.createdAt) }),
        matching && matching.id === record.id ? el("span", { class: "badge good", text: t("enrol.in_use") }) : null,
        el("button", {
          type: "button",
          class: "secondary compact",
          text: t("enrol.show"),
          onclick: () => showKey(record),
        }),
        el("button", {
          type: "button",
          class: "secondary compact danger",
          text: t("enrol.delete"),
          onclick: async () => {
            if (window.confirm(t("enrol.delete_confirm"))) {
              await deleteKey(record.id);
              await refresh();
            }
          },
        }),
      ),
    ),
  );
  if (!keys.length) localList.append(el("li", { class: "muted", text: t("enrol.none") }));
}

if (!cryptoAvailable()) {
  document.getElementById("crypto-missing").hidden = false;
  createButton.disabled = true;
} else {
  createButton.addEventListener("click", async () => {
    createButton.disabled = true;
    try {
      const record = await createKey();
      showKey(record);
      await refresh();
      jwkBox.focus();
      jwkBox.select();
    } finally {
      createButton.disabled = false;
    }
  });
  copyButton.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(jwkBox.value);
      copyStatus.textContent = t("enrol.copied");
    } catch {
      jwkBox.select();
      copyStatus.textContent = t("enrol.copy_manual");
    }
  });
  refresh();
}
