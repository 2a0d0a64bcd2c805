// The prescription form: catalogue and ICD-10 search, the rules checked as the prescriber types,
// one prescription per kind, and the signature made in this browser with the enrolled key.
// What is typed is kept in this browser until sent (draft.js); words, dates and refusals are
// in the page's language (../erx/i18n.js), whatever the browser's own language is.
import { cryptoAvailable, findKeyFor, signJws } from "./keystore.js";
import { combobox, csrfFetch, el, problemOf } from "./common.js";
import { fieldErrors } from "./fielderrors.js";
import { ageInMonths, parseWeight, rulesOf } from "./rules.js";
import { clearDraft, draftKey, loadDraft, resumeSession, saveDraft, setAside, takePrevious } from "./draft.js";
import {
  compareDays,
  errorText,
  fill,
  formatDay,
  formatMoment,
  isoDay,
  parseDay,
  problemText,
  readJson,
  translator,
  vnToday,
} from "../erx/i18n.js";

const page = readJson("console-page");
const policy = readJson("console-policy");
const messages = readJson("console-text");
const t = translator(messages, "console.js.");
const rules = rulesOf(policy);
const FIELDS = ["p-full-name", "p-dob", "p-gender", "p-national-id", "p-insurance", "p-phone", "p-address", "p-weight", "g-full-name", "g-national-id", "g-phone", "notes", "follow-up"];
const DRAFT = draftKey(page.facility_code, page.prescriber_id);

const $ = (id) => document.getElementById(id);
const form = $("rx-form");
const sendButton = $("sign-send");
const sendStatus = $("send-status");
const summary = $("form-errors");
const linesBox = $("lines");
const diagnosesBox = $("diagnoses");
const splitOffer = $("split-offer");
const splitOk = $("split-ok");
const sessionNote = $("session-note");
const errorsOf = fieldErrors(form, summary);

const state = { lines: [], diagnoses: [], submitted: false, touched: new Set(), sending: false, replaces: null, replacesKind: null, origin: null, sessionEnded: false };
let signingKey = null;

// ---- reading the form --------------------------------------------------------------------

function value(id) {
  return $(id).value.trim();
}

function patientAge() {
  const born = parseDay(value("p-dob"));
  return born ? { born, months: ageInMonths(born, vnToday()) } : null;
}

// Months count below the guardian age (72 months); an adult's age is in years only.
function ageText(months) {
  if (months < 24) return t("age_months", { months });
  if (months < policy.guardian_required_under_months) return t("age_years_months", { years: Math.floor(months / 12), months });
  return t("age_years", { years: Math.floor(months / 12) });
}

function validate() {
  const errors = [];
  const add = (loc, message) => errors.push({ loc, message });
  const show = (loc) => state.submitted || state.touched.has(loc);
  const required = (id, loc) => {
    if (!value(id) && show(loc)) add(loc, t("required"));
  };
  const today = vnToday();

  required("p-full-name", "patient.full_name");
  required("p-gender", "patient.gender");
  const age = patientAge();
  const ageBox = $("p-age");
  if (!value("p-dob")) {
    required("p-dob", "patient.date_of_birth");
    ageBox.textContent = "";
  } else if (!age) {
    if (show("patient.date_of_birth")) add("patient.date_of_birth", t("bad_date"));
    ageBox.textContent = "";
  } else if (compareDays(age.born, today) > 0) {
    add("patient.date_of_birth", t("dob_future"));
    ageBox.textContent = "";
  } else {
    ageBox.textContent = `${formatDay(age.born)} · ${ageText(age.months)}`;
  }

  const child = age && age.months >= 0 && age.months < policy.guardian_required_under_months;
  const guardianBox = $("guardian");
  const guardianTyped = ["g-full-name", "g-national-id", "g-phone"].some((id) => value(id));
  guardianBox.hidden = !(child || guardianTyped);
  if (child) {
    if (!value("g-full-name")) add("patient.guardian.full_name", t("guardian_needed", { months: policy.guardian_required_under_months }));
    if (!value("p-weight")) add("patient.weight_kg", t("weight_needed", { months: policy.guardian_required_under_months }));
  }

  const nationalId = value("p-national-id");
  if (nationalId && !/^[0-9]{12}$/.test(nationalId)) add("patient.national_id", t("national_id_format"));
  const kinds = rules.groupsOf(state.lines).map(([kind]) => kind);
  if (kinds.includes("n") && !nationalId) add("patient.national_id", t("national_id_narcotic"));
  const guardianId = value("g-national-id");
  if (guardianId && !/^[0-9]{12}$/.test(guardianId)) add("patient.guardian.national_id", t("national_id_format"));
  const insurance = value("p-insurance").toUpperCase();
  if (insurance && !/^[A-Z]{2}[0-9]{13}$/.test(insurance)) add("patient.insurance_no", t("insurance_format"));
  for (const [id, loc] of [["p-phone", "patient.phone"], ["g-phone", "patient.guardian.phone"]]) {
    const phone = value(id);
    if (phone && !/^\+?[0-9]{8,15}$/.test(phone)) add(loc, t("phone_format"));
  }
  const weight = value("p-weight");
  if (weight) {
    const kg = parseWeight(weight);
    if (!(kg > 0 && kg <= 400)) add("patient.weight_kg", t("weight_range"));
  }

  if (!state.diagnoses.length && state.submitted) add("diagnoses", t("diagnosis_needed"));
  if (!state.lines.length && state.submitted) add("items", t("drug_needed"));

  state.lines.forEach((line, index) => {
    const loc = `items.${index}`;
    const quantity = Number(line.quantity);
    if (line.quantity === "" ? show(`${loc}.quantity`) : !(Number.isInteger(quantity) && quantity > 0)) {
      add(`${loc}.quantity`, t("quantity_positive"));
    }
    if (!line.unit.trim() && show(`${loc}.unit`)) add(`${loc}.unit`, t("required"));
    if (!line.instructions.trim() && show(`${loc}.instructions`)) add(`${loc}.instructions`, t("required"));
    const days = Number(line.days_supply);
    const { limit, why } = rules.daysLimit(rules.kindOf(line), state.diagnoses);
    if (line.days_supply === "") {
      if (show(`${loc}.days_supply`)) add(`${loc}.days_supply`, t("required"));
    } else if (!(Number.isInteger(days) && days > 0)) {
      add(`${loc}.days_supply`, t("days_positive"));
    } else if (days > limit) {
      add(`${loc}.days_supply`, t(why, { days: limit }));
    }
  });

  if (value("follow-up")) {
    const follow = parseDay(value("follow-up"));
    if (!follow) add("follow_up_date", t("bad_date"));
    else if (compareDays(follow, today) < 0) add("follow_up_date", t("follow_up_past"));
  }

  errorsOf.clear();
  for (const error of errors) errorsOf.set(error.loc, error.message);
  updateKinds();
  keep();
  return errors;
}

function updateKinds() {
  const found = rules.groupsOf(state.lines);
  const box = $("kind-summary");
  box.replaceChildren(
    ...found.map(([kind, indices]) =>
      el("span", { class: `badge kind-${kind}`, "data-kind": kind }, t(`kind.${kind}`), ` · ${t("drug_count", { count: indices.length })}`),
    ),
  );
  const several = found.length > 1;
  splitOffer.hidden = !several;
  if (several) {
    $("split-text").textContent = t("split_offer", { count: found.length });
    $("split-label").textContent = t("split_accept", { count: found.length });
  } else {
    splitOk.checked = false;
  }
  sendButton.textContent = several ? t("send_split", { count: found.length }) : t("send");
}

// ---- the draft kept in this browser --------------------------------------------------------

let restoring = false;

function snapshot() {
  return {
    fields: Object.fromEntries(FIELDS.map((id) => [id, $(id).value])),
    diagnoses: state.diagnoses,
    lines: state.lines.map(({ id, drug, quantity, unit, days_supply, instructions, decoction }) => ({ id, drug, quantity, unit, days_supply, instructions, decoction })),
    split: splitOk.checked,
    replaces: state.replaces,
    replacesKind: state.replacesKind,
    origin: state.origin,
  };
}

function isEmpty(draft) {
  return !draft || (!draft.lines.length && !draft.diagnoses.length && !Object.values(draft.fields).some((v) => v.trim()));
}

function keep() {
  if (restoring) return;
  const draft = snapshot();
  if (isEmpty(draft)) clearDraft(DRAFT);
  else saveDraft(DRAFT, draft);
}

function apply(draft) {
  restoring = true;
  for (const [id, text] of Object.entries(draft.fields || {})) if ($(id)) $(id).value = text;
  state.diagnoses = draft.diagnoses || [];
  state.lines = (draft.lines || []).map((line) => ({ ...line, id: line.id || crypto.randomUUID() }));
  splitOk.checked = Boolean(draft.split);
  state.replaces = draft.replaces || null;
  state.replacesKind = draft.replacesKind || null;
  state.origin = draft.origin || null;
  renderDiagnoses();
  renderLines();
  restoring = false;
}

// A renewal or a correction: the earlier prescription, with today's dates left to the prescriber.
function fromPrefill(prefill) {
  const patient = prefill.patient;
  const born = parseDay(patient.date_of_birth);
  const guardian = patient.guardian || {};
  return {
    fields: {
      "p-full-name": patient.full_name,
      "p-dob": born ? formatDay(born) : "",
      "p-gender": patient.gender,
      "p-national-id": patient.national_id,
      "p-insurance": patient.insurance_no,
      "p-phone": patient.phone,
      "p-address": patient.address,
      "p-weight": patient.weight_kg.replace(".", ","),
      "g-full-name": guardian.full_name || "",
      "g-national-id": guardian.national_id || "",
      "g-phone": guardian.phone || "",
      notes: prefill.notes,
      "follow-up": "",
    },
    diagnoses: prefill.diagnoses.map((d) => ({ ...d, chronic: rules.isChronic(d.icd10) })),
    lines: prefill.lines,
    split: false,
    replaces: prefill.mode === "replace" ? prefill.source : null,
    replacesKind: prefill.mode === "replace" ? prefill.kind : null,
    origin: `${prefill.mode}:${prefill.source}`,
  };
}

function showDraftNote(text, { restorable = false } = {}) {
  $("draft-text").textContent = text;
  $("draft-restore").hidden = !restorable;
  $("draft-note").hidden = false;
}

function startForm() {
  const draft = loadDraft(DRAFT);
  // A reload of the same renewal or correction carries on with what was changed since.
  const same = page.prefill && draft && draft.origin === `${page.prefill.mode}:${page.prefill.source}`;
  if (page.prefill && !same) {
    const hadDraft = setAside(DRAFT);
    apply(fromPrefill(page.prefill));
    if (hadDraft) showDraftNote(t("draft_set_aside"), { restorable: true });
    return;
  }
  if (draft && !isEmpty(draft)) {
    apply(draft);
    showDraftNote(t("draft_restored", { when: formatMoment(draft.savedAt) }));
  }
}

$("draft-discard").addEventListener("click", () => {
  clearDraft(DRAFT);
  resetPatient();
  state.lines = [];
  state.replaces = null;
  state.origin = null;
  renderLines();
  validate();
  $("draft-note").hidden = true;
  $("p-full-name").focus();
});
$("draft-restore").addEventListener("click", () => {
  const previous = takePrevious(DRAFT);
  if (previous) apply(previous);
  validate();
  $("draft-note").hidden = true;
});

// ---- the session: ended, then resumed after signing in again --------------------------------

function sessionEnded() {
  if (state.sessionEnded) return;
  state.sessionEnded = true;
  sessionNote.replaceChildren(
    el("p", { text: t("session_ended") }),
    el(
      "p",
      { class: "inline-actions" },
      el("a", { class: "button compact", href: page.sign_in_url, target: "_blank", rel: "opener", "data-sign-in": "true", text: t("sign_in_again") }),
      el("span", { class: "small", text: t("session_ended_hint") }),
    ),
  );
  sessionNote.hidden = false;
  sessionNote.focus();
}

async function checkSession() {
  if (!state.sessionEnded) return;
  const outcome = await resumeSession(page.session_url, page.facility_code, page.prescriber_id);
  if (outcome === "resumed") {
    state.sessionEnded = false;
    sessionNote.replaceChildren(el("p", { text: t("session_resumed") }));
    sessionNote.className = "note good";
    sessionNote.dataset.resumed = "true";
    refreshRecent();
  } else if (outcome === "other-facility" || outcome === "other-prescriber") {
    sessionNote.replaceChildren(el("p", { text: t(`session_${outcome.replace("-", "_")}`) }));
  }
}

window.addEventListener("focus", checkSession);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") checkSession();
});

// ---- diagnoses -----------------------------------------------------------------------------

function renderDiagnoses() {
  diagnosesBox.replaceChildren(
    ...state.diagnoses.map((diagnosis, index) =>
      el(
        "li",
        { class: "chosen", "data-icd10": diagnosis.icd10 },
        el("span", { class: "mono", text: diagnosis.icd10 }),
        el("span", { text: diagnosis.text }),
        diagnosis.chronic ? el("span", { class: "badge", text: t("chronic") }) : null,
        el("button", {
          type: "button",
          class: "secondary compact",
          "aria-label": t("remove_named", { name: `${diagnosis.icd10} ${diagnosis.text}` }),
          text: t("remove"),
          onclick: () => {
            state.diagnoses.splice(index, 1);
            renderDiagnoses();
            validate();
          },
        }),
      ),
    ),
  );
  $("no-diagnoses").hidden = state.diagnoses.length > 0;
}

combobox({
  input: $("icd-search"),
  list: $("icd-results"),
  minLength: 1,
  search: async (q) => {
    const response = await fetch(`${page.icd10_url}?q=${encodeURIComponent(q)}`);
    const body = await response.json();
    return { items: body.items, empty: t("no_match") };
  },
  render: (item) => ({
    label: `${item.code} · ${document.documentElement.lang === "en" ? item.name_en : item.name_vi}`,
    detail: item.chronic ? t("chronic") : "",
    disabled: state.diagnoses.some((d) => d.icd10 === item.code),
  }),
  pick: (item) => {
    state.diagnoses.push({ icd10: item.code, text: item.name_vi, chronic: item.chronic });
    renderDiagnoses();
    validate();
  },
});

// ---- drug lines ----------------------------------------------------------------------------

function lineField(line, index, field, label, attributes) {
  const loc = `items.${index}.${field}`;
  const id = `line-${line.id}-${field}`;
  const input = el("input", {
    id,
    "data-loc": loc,
    value: line[field],
    ...attributes,
  });
  input.addEventListener("input", () => {
    line[field] = input.value;
    validate();
  });
  input.addEventListener("blur", () => {
    state.touched.add(loc);
    validate();
  });
  const slot = el("p", { class: "field-error", "data-error-for": loc });
  const wrapper = el("div", { class: "field" }, el("label", { for: id, text: label }), input, slot);
  return wrapper;
}

function renderLines() {
  linesBox.replaceChildren(
    ...state.lines.map((line, index) => {
      const drug = line.drug;
      const kind = rules.kindOf(line);
      const card = el(
        "div",
        { class: "line", role: "group", "aria-label": drug.name, "data-line": index },
        el(
          "div",
          { class: "line-head" },
          el(
            "div",
            {},
            el("strong", { text: drug.name }),
            el("p", {
              class: "muted small",
              text: `${drug.active_ingredient} · ${drug.strength} · ${drug.dosage_form} · ${drug.registration_no}`,
            }),
          ),
          el("span", { class: `badge kind-${kind}`, text: t(`kind.${kind}`) }),
          el("button", {
            type: "button",
            class: "secondary compact",
            "aria-label": t("remove_named", { name: drug.name }),
            text: t("remove"),
            onclick: () => {
              state.lines.splice(index, 1);
              renderLines();
              validate();
            },
          }),
        ),
        el("p", { class: "field-error", "data-error-for": `items.${index}` }),
        el(
          "div",
          { class: "form-row line-fields" },
          lineField(line, index, "quantity", t("quantity"), { type: "text", inputmode: "numeric", autocomplete: "off", required: true }),
          lineField(line, index, "unit", t("unit"), { type: "text", maxlength: "32", required: true }),
          lineField(line, index, "days_supply", t("days_supply"), { type: "text", inputmode: "numeric", autocomplete: "off", required: true }),
        ),
        lineField(line, index, "instructions", t("instructions"), { type: "text", maxlength: "1000", required: true, class: "wide" }),
        drug.category === "traditional"
          ? el(
              "label",
              { class: "check" },
              el("input", {
                type: "checkbox",
                checked: line.decoction,
                onchange: (event) => {
                  line.decoction = event.target.checked;
                  renderLines();
                  validate();
                },
              }),
              ` ${t("decoction")}`,
            )
          : null,
      );
      errorsOf.linkAll(card);
      return card;
    }),
  );
  $("no-lines").hidden = state.lines.length > 0;
}

function drugBlocked(drug) {
  if (drug.category === "supplement") return t("supplement_never");
  const kind = policy.kind_of_category[drug.category];
  if (policy.controlled_kinds.includes(kind) && !page.controlled_allowed) return t("controlled_not_allowed");
  return "";
}

combobox({
  input: $("drug-search"),
  list: $("drug-results"),
  search: async (q) => {
    const response = await fetch(`${page.drugs_url}?q=${encodeURIComponent(q)}&limit=15`);
    const body = await response.json();
    return { items: body.items, empty: t("no_match") };
  },
  render: (drug) => {
    const blocked = drugBlocked(drug);
    return {
      label: drug.name,
      detail: `${drug.active_ingredient} · ${drug.strength} · ${drug.dosage_form} · ${t(`category.${drug.category}`)}${blocked ? ` · ${blocked}` : ""}`,
      disabled: Boolean(blocked),
    };
  },
  pick: (drug) => {
    state.lines.push({
      id: crypto.randomUUID(),
      drug,
      quantity: "",
      unit: drug.unit,
      days_supply: "",
      instructions: "",
      decoction: false,
    });
    renderLines();
    validate();
    const added = linesBox.querySelector(`[data-line="${state.lines.length - 1}"] input`);
    if (added) added.focus();
  },
});

// ---- signing and sending -------------------------------------------------------------------

function vietnamNow() {
  // Vietnam keeps UTC+7 all year: no daylight saving to look up.
  return `${new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 19)}+07:00`;
}

function payloadFor(kind, indices) {
  const patient = {
    full_name: value("p-full-name"),
    date_of_birth: isoDay(parseDay(value("p-dob"))),
    gender: value("p-gender"),
  };
  const optional = [
    ["national_id", value("p-national-id")],
    ["insurance_no", value("p-insurance").toUpperCase()],
    ["phone", value("p-phone")],
    ["address", value("p-address")],
  ];
  for (const [name, text] of optional) if (text) patient[name] = text;
  if (value("p-weight")) patient.weight_kg = parseWeight(value("p-weight"));
  if (!$("guardian").hidden && value("g-full-name")) {
    patient.guardian = { full_name: value("g-full-name") };
    if (value("g-national-id")) patient.guardian.national_id = value("g-national-id");
    if (value("g-phone")) patient.guardian.phone = value("g-phone");
  }
  const payload = {
    kind,
    facility_code: page.facility_code,
    issued_at: vietnamNow(),
    patient,
    diagnoses: state.diagnoses.map((d) => ({ icd10: d.icd10, text: d.text })),
    items: indices.map((index) => {
      const line = state.lines[index];
      return {
        active_ingredient: line.drug.active_ingredient,
        strength: line.drug.strength,
        dosage_form: line.drug.dosage_form,
        registration_no: line.drug.registration_no,
        quantity: Number(line.quantity),
        unit: line.unit.trim(),
        instructions: line.instructions.trim(),
        days_supply: Number(line.days_supply),
      };
    }),
  };
  if (value("notes")) payload.notes = value("notes");
  if (value("follow-up")) payload.follow_up_date = isoDay(parseDay(value("follow-up")));
  return payload;
}

// The correction replaces the earlier prescription with the prescription of the same kind.
function replacesFor(kind, found) {
  if (!state.replaces) return null;
  const target = found.some(([k]) => k === state.replacesKind) ? state.replacesKind : found[0][0];
  return kind === target ? state.replaces : null;
}

function serverErrors(problem, indices) {
  const shown = [];
  for (const error of problem.errors || []) {
    let loc = Array.isArray(error.loc) ? error.loc.slice() : [];
    if (loc[0] === "payload" || loc[0] === "body") loc = loc.slice(1);
    // The server numbers the lines of the prescription it got; the form numbers all of them.
    if (loc[0] === "items" && typeof loc[1] === "number" && indices[loc[1]] !== undefined) loc[1] = indices[loc[1]];
    const key = loc.join(".");
    const text = errorText(messages, error);
    const where = errorsOf.set(key, text);
    shown.push({ loc: where || "", label: where ? errorsOf.labelOf(where) : "", message: text });
  }
  if (!shown.length) shown.push({ loc: "", message: problemText(messages, problem, problem.status) });
  return shown;
}

function deadlineText(iso) {
  // 2026-12-07T23:59:59+07:00: the deadline is given in Vietnam time already.
  const [day, time] = [iso.slice(0, 10).split("-").reverse().join("/"), iso.slice(11, 19)];
  const key = time === "23:59:59" ? "web.deadline.end_of_day" : "web.deadline.at";
  return fill(messages[key] || "{day}", { day, time });
}

function addResult(body, kind, replaced) {
  const list = $("result-list");
  list.append(
    el(
      "li",
      { "data-code": body.code },
      el("a", { class: "mono result-code", href: body.print_url, text: body.code }),
      el("span", { class: `badge kind-${kind}`, text: t(`kind.${kind}`) }),
      el("span", { class: "muted small", "data-valid-until": body.valid_until, text: t("valid_until", { when: deadlineText(body.valid_until) }) }),
      replaced ? el("span", { class: "small", text: t("replaced", { code: replaced }) }) : null,
      el("a", { class: "button compact", href: body.print_url, text: t("print") }),
    ),
  );
  $("results").hidden = false;
}

function resetPatient() {
  for (const id of FIELDS) $(id).value = "";
  state.diagnoses = [];
  state.touched.clear();
  state.submitted = false;
  renderDiagnoses();
}

async function send(event) {
  event.preventDefault();
  if (state.sending) return;
  state.submitted = true;
  const errors = validate();
  if (errors.length) {
    errorsOf.showSummary(t("fix_first"), errors.map((e) => ({ ...e, label: errorsOf.labelOf(e.loc) })));
    return;
  }
  const found = rules.groupsOf(state.lines);
  if (found.length > 1 && !splitOk.checked) {
    errorsOf.showSummary(t("fix_first"), [{ loc: "", message: t("split_offer", { count: found.length }) }]);
    splitOk.focus();
    return;
  }
  if (!signingKey) {
    errorsOf.showSummary(t("fix_first"), [{ loc: "", message: t("key_missing") }]);
    return;
  }
  errorsOf.showSummary("", []);
  state.sending = true;
  sendButton.disabled = true;
  const done = new Set();
  let replacedNow = false;
  try {
    for (const [kind, indices] of found) {
      sendStatus.textContent = t("signing", { kind: t(`kind.${kind}`) });
      const payload = payloadFor(kind, indices);
      const replaces = replacesFor(kind, found);
      if (replaces) payload.replaces = replaces;
      const jws = await signJws(signingKey.keyPair.privateKey, page.prescriber_id, payload);
      sendStatus.textContent = t("sending");
      const response = await csrfFetch(page.submit_url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
        body: JSON.stringify({ jws }),
      });
      if (!response.ok) {
        const problem = await problemOf(response);
        errorsOf.clear();
        if (response.status === 401) {
          sessionEnded();
          errorsOf.showSummary(t("not_sent"), [{ loc: "", message: t("session_ended_kept") }]);
        } else {
          errorsOf.showSummary(t("server_refused"), serverErrors(problem, indices));
        }
        sendStatus.textContent = "";
        break;
      }
      addResult(await response.json(), kind, replaces);
      if (replaces) replacedNow = true;
      indices.forEach((index) => done.add(index));
    }
  } catch {
    errorsOf.showSummary(t("network"), [{ loc: "", message: t("network_hint") }]);
    sendStatus.textContent = "";
  } finally {
    state.sending = false;
    sendButton.disabled = false;
  }
  if (done.size) {
    // Sent lines leave the form; a refused kind stays, with its errors, to be fixed and resent.
    state.lines = state.lines.filter((_, index) => !done.has(index));
    if (replacedNow) state.replaces = null;
    if (!state.lines.length) {
      resetPatient();
      state.origin = null;
      clearDraft(DRAFT);
      $("draft-note").hidden = true;
    }
    renderLines();
    state.submitted = state.lines.length > 0;
    validate();
    sendStatus.textContent = t("sent", { count: done.size });
    refreshRecent();
  }
}

// ---- recent prescriptions --------------------------------------------------------------------

async function refreshRecent() {
  if (state.sessionEnded) return;
  let response;
  try {
    response = await fetch(page.recent_url, { credentials: "same-origin" });
  } catch {
    return;
  }
  if (response.status === 401) {
    // Stay on the page: what was typed stays, and signing in again carries on with it.
    sessionEnded();
    return;
  }
  if (response.ok) {
    // Server-rendered, autoescaped markup of our own origin.
    $("recent").innerHTML = await response.text();
  }
}

// ---- start -------------------------------------------------------------------------------

form.addEventListener("submit", send);
form.addEventListener("input", (event) => {
  if (event.target.dataset && event.target.dataset.loc && !event.target.closest(".line")) validate();
});
form.addEventListener("focusout", (event) => {
  const loc = event.target.dataset ? event.target.dataset.loc : undefined;
  if (loc && !event.target.closest(".line")) {
    state.touched.add(loc);
    validate();
  }
});
form.addEventListener("change", (event) => {
  if (event.target.id === "split-ok") {
    errorsOf.showSummary("", []);
    keep();
  }
});
// Signing out on purpose ends the draft too (a shared computer keeps no patient's data).
const signOut = document.querySelector("form.sign-out");
if (signOut) signOut.addEventListener("submit", () => clearDraft(DRAFT));
$("refresh-recent").addEventListener("click", refreshRecent);
setInterval(refreshRecent, 30000);
errorsOf.linkAll(form);
startForm();
renderDiagnoses();
renderLines();
validate();

if (!cryptoAvailable()) {
  $("crypto-missing").hidden = false;
  sendButton.disabled = true;
} else {
  findKeyFor(page.public_jwk).then((record) => {
    signingKey = record;
    $("key-missing").hidden = Boolean(record);
    form.dataset.ready = record ? "true" : "no-key";
  });
}
