// The pharmacist's counter: scan the QR (camera with BarcodeDetector or the server's decoder, or
// a USB scanner typing into the code field) or type the code, see what remains, dispense.
// Every check the server makes that a person can fix is made here first, in the page's language.
import {
  compareDays,
  errorText,
  money,
  groupDigits,
  parseExpiry,
  parseWhole,
  problemText,
  readJson,
  translator,
  vnToday,
} from "../erx/i18n.js";

const $ = (id) => document.getElementById(id);
const page = readJson("pharm-page");
const messages = readJson("pharm-text");
const t = translator(messages, "pharm.js.");
const PHARMACIST_KEY = "erx.pharmacist";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The CSRF token goes in a header, never in a URL.
function post(url, body, contentType = "application/json") {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": contentType, "X-CSRF-Token": csrfToken() },
    body,
  });
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { status: response.status };
  }
}

function link(href, text, className = "") {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (className) a.className = className;
  return a;
}

// A refusal in words: the session's end offers the way back in, everything else its problem type.
function showRefusal(box, response, problem) {
  box.replaceChildren();
  if (response.status === 401) {
    box.append(t("session_ended"), " ", link(page.sign_in_url, t("sign_in_again")));
  } else if (response.status === 429) {
    box.textContent = t("throttled", { seconds: Number(response.headers.get("Retry-After") || "60") });
  } else if (response.status === 404) {
    box.textContent = t("not_found");
  } else {
    box.textContent = problemText(messages, problem, response.status);
  }
  box.hidden = false;
}

// ---- finding the prescription ----------------------------------------------------------------

const lookupError = $("lookup-error");
const container = $("prescription");
const codeInput = $("code-input");
const result = $("dispense-result");
let currentText = "";

async function lookup(text, { armed = true, focus = "heading" } = {}) {
  lookupError.hidden = true;
  const response = await post(page.lookup_url, JSON.stringify({ text, armed }));
  if (!response.ok) {
    showRefusal(lookupError, response, await problemOf(response));
    return false;
  }
  currentText = text;
  // Server-rendered, autoescaped markup of our own origin.
  container.innerHTML = await response.text();
  // The field is free for the next scan; the code stays in the heading.
  codeInput.value = "";
  setupDispenseForm();
  const rearm = $("rearm");
  if (rearm) rearm.addEventListener("click", () => lookup(currentText, { armed: true }));
  const heading = container.querySelector("h2");
  if (focus === "heading" && heading) {
    heading.tabIndex = -1;
    heading.focus();
  } else if (focus === "code") {
    codeInput.focus();
  }
  return true;
}

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = codeInput.value.trim();
  if (!text) {
    lookupError.textContent = t("code_needed");
    lookupError.hidden = false;
    return;
  }
  result.hidden = true;
  await lookup(text);
});

// A USB scanner types like a keyboard: keys typed while no field has the focus (the heading of
// the prescription just shown, say) go to the code field, so the next scan is never lost.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  const editing = target instanceof HTMLElement && target.closest("input, select, textarea, button, a, [contenteditable]");
  if (editing || event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) return;
  codeInput.focus();
});

// ---- the camera ------------------------------------------------------------------------------

const video = $("scan-video");
const canvas = $("scan-canvas");
const scanStatus = $("scan-status");
const startButton = $("scan-start");
const stopButton = $("scan-stop");
let stream = null;
let scanning = false;

function stopCamera() {
  scanning = false;
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.hidden = true;
  stopButton.hidden = true;
  startButton.hidden = false;
}

async function localDetector() {
  if (!("BarcodeDetector" in window)) return null;
  try {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    return formats.includes("qr_code") ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
  } catch {
    return null;
  }
}

function frameBlob() {
  const scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
}

async function scanLoop(detector) {
  while (scanning) {
    let text = null;
    if (video.readyState >= 2 && video.videoWidth) {
      try {
        if (detector) {
          const codes = await detector.detect(video);
          text = codes.length ? codes[0].rawValue : null;
        } else {
          const blob = await frameBlob();
          // The server decodes the frame in memory and keeps nothing.
          const response = blob ? await post(page.decode_url, blob, "image/jpeg") : null;
          if (response && response.ok) text = (await response.json()).text;
          else if (response && response.status === 401) {
            stopCamera();
            showRefusal(lookupError, response, {});
            return;
          }
        }
      } catch {
        text = null;
      }
    }
    if (text && scanning) {
      stopCamera();
      scanStatus.textContent = t("scanned");
      result.hidden = true;
      await lookup(text);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, detector ? 150 : 500));
  }
}

startButton.addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    scanStatus.textContent = t("no_camera");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    scanStatus.textContent = t("camera_refused");
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  startButton.hidden = true;
  stopButton.hidden = false;
  const detector = await localDetector();
  scanStatus.textContent = detector ? t("scanning_local") : t("scanning_server");
  video.dataset.decoder = detector ? "browser" : "server";
  scanning = true;
  scanLoop(detector);
});
stopButton.addEventListener("click", () => {
  stopCamera();
  scanStatus.textContent = "";
});

// ---- dispensing --------------------------------------------------------------------------

function readLine(line) {
  const field = (name) => line.querySelector(`[name="${name}"]`);
  return {
    lineNo: Number(line.dataset.line),
    max: Number(field("quantity").dataset.max),
    quantityText: field("quantity").value.trim(),
    priceText: field("unit_price").value.trim(),
    expiryText: field("expiry_date").value.trim(),
    batch: field("batch_no").value.trim(),
    registrationNo: field("registration_no").value,
  };
}

// Every mistake a person can fix, per line, before anything is sent.
function check(lines) {
  const today = vnToday();
  const items = [];
  const problems = [];
  for (const line of lines) {
    const read = readLine(line);
    const own = [];
    const quantity = read.quantityText === "" ? 0 : parseWhole(read.quantityText);
    if (quantity === null) own.push(["quantity", t("quantity_whole")]);
    else if (quantity > read.max) own.push(["quantity", t("quantity_max", { max: read.max })]);
    if (quantity) {
      const price = parseWhole(read.priceText);
      if (read.priceText === "") own.push(["unit_price", t("price_needed")]);
      else if (price === null) own.push(["unit_price", t("price_whole")]);
      let expiry = null;
      if (read.expiryText) {
        expiry = parseExpiry(read.expiryText);
        if (!expiry) own.push(["expiry_date", t("expiry_bad")]);
        else if (compareDays(expiry, today) < 0) own.push(["expiry_date", t("expiry_past")]);
      }
      if (!own.length) {
        const item = { line_no: read.lineNo, registration_no: read.registrationNo, quantity, unit_price: price };
        if (read.batch) item.batch_no = read.batch;
        if (expiry) item.expiry_date = `${expiry.y}-${String(expiry.m).padStart(2, "0")}-${String(expiry.d).padStart(2, "0")}`;
        items.push(item);
      }
    }
    const slot = line.querySelector("[data-error-for]");
    if (slot) slot.textContent = own.map(([, text]) => text).join(" ");
    const wrong = new Set(own.map(([field]) => field));
    for (const name of ["quantity", "unit_price", "expiry_date"]) {
      const input = line.querySelector(`[name="${name}"]`);
      if (wrong.has(name)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    for (const [, text] of own) problems.push(t("line", { line: read.lineNo, message: text }));
  }
  return { items, problems };
}

function setupDispenseForm() {
  const form = $("dispense-form");
  const button = $("dispense-submit");
  if (!form || !button) return;
  const lines = [...form.querySelectorAll("fieldset.line")].filter((line) => line.querySelector("select"));
  const totalBox = $("dispense-total");
  const name = $("pharmacist-name");
  const licence = $("pharmacist-licence");
  const errors = $("dispense-errors");
  const confirmBox = $("dispense-confirm");
  try {
    const saved = JSON.parse(localStorage.getItem(PHARMACIST_KEY) || "null");
    if (saved) {
      name.value = saved.full_name || "";
      licence.value = saved.license_no || "";
    }
  } catch {
    // A damaged entry only costs typing the name again.
  }

  function total() {
    let sum = 0;
    let known = true;
    for (const line of lines) {
      const read = readLine(line);
      const quantity = parseWhole(read.quantityText) || 0;
      const price = parseWhole(read.priceText);
      if (quantity > 0 && price === null) known = false;
      sum += quantity * (price || 0);
    }
    totalBox.textContent = known ? money(sum) : "—";
    return known ? sum : null;
  }

  for (const line of lines) {
    const select = line.querySelector("select");
    const price = line.querySelector('[name="unit_price"]');
    const fill = () => {
      const listed = select.selectedOptions[0] ? select.selectedOptions[0].dataset.price : "";
      price.value = listed ? groupDigits(Number(listed)) : "";
      total();
    };
    select.addEventListener("change", fill);
    // Written back the Vietnamese way once typed: 1500 becomes 1.500.
    price.addEventListener("blur", () => {
      const value = parseWhole(price.value);
      if (value !== null) price.value = groupDigits(value);
    });
    fill();
  }
  form.addEventListener("input", total);
  total();

  function showErrors(title, list) {
    errors.querySelector("h3").textContent = title;
    errors.querySelector("ul").replaceChildren(
      ...list.map((text) => {
        const item = document.createElement("li");
        item.textContent = text;
        return item;
      }),
    );
    errors.hidden = list.length === 0;
    if (list.length) errors.focus();
  }

  let sending = false;
  let pending = null;

  async function send(items, pharmacist) {
    sending = true;
    button.disabled = true;
    confirmBox.hidden = true;
    try {
      const response = await post(
        page.dispense_url,
        JSON.stringify({
          code: form.dataset.code,
          idempotency_key: form.querySelector('[name="idempotency_key"]').value,
          pharmacist,
          items,
        }),
      );
      if (!response.ok) {
        const problem = await problemOf(response);
        const list = [];
        for (const error of problem.errors || []) {
          const loc = error.loc || [];
          const index = loc[0] === "body" && loc[1] === "items" ? loc[2] : undefined;
          const lineNo = index !== undefined && items[index] ? items[index].line_no : undefined;
          const text = errorText(messages, error);
          const slot = lineNo !== undefined ? form.querySelector(`[data-error-for="line-${lineNo}"]`) : null;
          if (slot) slot.textContent = text;
          list.push(lineNo !== undefined ? t("line", { line: lineNo, message: text }) : text);
        }
        const box = document.createElement("span");
        showRefusal(box, response, problem);
        showErrors(box.textContent, list.length ? list : [box.textContent]);
        if (response.status === 401) errors.querySelector("ul").replaceChildren(box);
        return;
      }
      const body = await response.json();
      localStorage.setItem(PHARMACIST_KEY, JSON.stringify(pharmacist));
      const text = document.createElement("p");
      text.textContent = t("dispensed", { number: body.receipt_no, status: t(`status.${body.prescription_status}`) });
      text.dataset.dispenseId = body.dispense_id;
      text.dataset.receiptNo = body.receipt_no;
      const actions = document.createElement("p");
      actions.className = "inline-actions";
      actions.append(link(body.receipt_url, t("receipt"), "button"), link(body.receipt_roll_url, t("receipt_roll"), "button secondary"));
      result.replaceChildren(text, actions);
      result.hidden = false;
      // What now remains, without a form: selling more of it takes a deliberate step.
      await lookup(currentText, { armed: false, focus: "code" });
    } catch {
      showErrors(t("network"), [t("network_hint")]);
    } finally {
      sending = false;
      if (document.body.contains(button)) button.disabled = false;
    }
  }

  $("confirm-yes").addEventListener("click", () => {
    if (pending && !sending) send(...pending);
  });
  $("confirm-no").addEventListener("click", () => {
    pending = null;
    confirmBox.hidden = true;
    button.focus();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sending) return;
    const { items, problems } = check(lines);
    const pharmacist = { full_name: name.value.trim(), license_no: licence.value.trim() };
    if (!items.length && !problems.length) problems.push(t("nothing_to_dispense"));
    if (!pharmacist.full_name || pharmacist.license_no.length < 3) problems.push(t("pharmacist_needed"));
    if (problems.length) {
      confirmBox.hidden = true;
      showErrors(t("fix_first"), problems);
      return;
    }
    showErrors("", []);
    const sum = total();
    const units = items.reduce((all, item) => all + item.quantity, 0);
    const large = (sum !== null && sum >= page.large_total) || items.some((item) => item.quantity >= page.large_units);
    if (large) {
      // A large sale is read back once before it goes.
      pending = [items, pharmacist];
      $("confirm-text").textContent = t("confirm_large", { units, total: sum === null ? "—" : money(sum) });
      confirmBox.hidden = false;
      $("confirm-yes").focus();
      return;
    }
    send(items, pharmacist);
  });
}
