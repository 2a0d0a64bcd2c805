// The pharmacist's counter: scan the QR (BarcodeDetector, else frames decoded by the server) or
// type the code, see what remains, pick the products and dispense.

const $ = (id) => document.getElementById(id);
const page = JSON.parse($("pharm-page").textContent);
const messages = JSON.parse($("pharm-text").textContent);
const t = (key, values = {}) =>
  (messages[`pharm.js.${key}`] ?? key).replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : ""));
const lang = document.documentElement.lang || "vi";
const money = (value) => `${new Intl.NumberFormat(lang === "vi" ? "vi-VN" : "en-US").format(value)} ₫`;
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
    return { status: response.status, detail: response.statusText };
  }
}

function refusal(response, problem) {
  if (response.status === 401) {
    window.location.assign(page.sign_in_url);
    return t("session_ended");
  }
  if (response.status === 404) return t("not_found");
  if (response.status === 429) return t("throttled", { seconds: response.headers.get("Retry-After") || "60" });
  if (response.status === 403 && String(problem.type || "").endsWith("csrf-refused")) return t("form_expired");
  return problem.detail || t("failed", { status: response.status });
}

// ---- finding the prescription ----------------------------------------------------------------

const lookupError = $("lookup-error");
const container = $("prescription");
let currentText = "";

async function lookup(text) {
  lookupError.hidden = true;
  currentText = text;
  const response = await post(page.lookup_url, JSON.stringify({ text }));
  if (!response.ok) {
    lookupError.textContent = refusal(response, await problemOf(response));
    lookupError.hidden = false;
    return false;
  }
  // Server-rendered, autoescaped markup of our own origin.
  container.innerHTML = await response.text();
  setupDispenseForm();
  const heading = container.querySelector("h2");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
  return true;
}

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("code-input").value.trim();
  if (!text) {
    lookupError.textContent = t("code_needed");
    lookupError.hidden = false;
    return;
  }
  $("dispense-result").hidden = true;
  await lookup(text);
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
          else if (response && response.status === 401) window.location.assign(page.sign_in_url);
        }
      } catch {
        text = null;
      }
    }
    if (text && scanning) {
      stopCamera();
      scanStatus.textContent = t("scanned");
      $("code-input").value = text.split(".")[0];
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

function setupDispenseForm() {
  const form = $("dispense-form");
  if (!form) return;
  const lines = [...form.querySelectorAll("fieldset.line")].filter((line) => line.querySelector("select"));
  const totalBox = $("dispense-total");
  const name = $("pharmacist-name");
  const licence = $("pharmacist-licence");
  try {
    const saved = JSON.parse(localStorage.getItem(PHARMACIST_KEY) || "null");
    if (saved && name && licence) {
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
      const quantity = Number(line.querySelector('[name="quantity"]').value || 0);
      const price = line.querySelector('[name="unit_price"]').value;
      if (quantity > 0 && price === "") known = false;
      sum += quantity * Number(price || 0);
    }
    if (totalBox) totalBox.textContent = known ? money(sum) : "—";
  }

  for (const line of lines) {
    const select = line.querySelector("select");
    const price = line.querySelector('[name="unit_price"]');
    const fill = () => {
      price.value = select.selectedOptions[0] ? select.selectedOptions[0].dataset.price : "";
      total();
    };
    select.addEventListener("change", fill);
    fill();
  }
  form.addEventListener("input", total);
  total();

  const errors = $("dispense-errors");
  const button = $("dispense-submit");
  let sending = false;

  function showErrors(title, list) {
    if (!errors) return;
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

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    form.querySelectorAll("[data-error-for]").forEach((slot) => (slot.textContent = ""));
    const items = [];
    for (const line of lines) {
      const quantity = Number(line.querySelector('[name="quantity"]').value || 0);
      if (!Number.isInteger(quantity) || quantity < 0) {
        showErrors(t("fix_first"), [t("quantity_whole")]);
        return;
      }
      if (quantity === 0) continue;
      const item = {
        line_no: Number(line.dataset.line),
        registration_no: line.querySelector("select").value,
        quantity,
      };
      const price = line.querySelector('[name="unit_price"]').value;
      if (price !== "") item.unit_price = Number(price);
      const batch = line.querySelector('[name="batch_no"]').value.trim();
      if (batch) item.batch_no = batch;
      const expiry = line.querySelector('[name="expiry_date"]').value;
      if (expiry) item.expiry_date = expiry;
      items.push(item);
    }
    const pharmacist = { full_name: name.value.trim(), license_no: licence.value.trim() };
    const missing = [];
    if (!items.length) missing.push(t("nothing_to_dispense"));
    if (!pharmacist.full_name || pharmacist.license_no.length < 3) missing.push(t("pharmacist_needed"));
    if (missing.length) {
      showErrors(t("fix_first"), missing);
      return;
    }
    sending = true;
    button.disabled = true;
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
          const slot = lineNo !== undefined ? form.querySelector(`[data-error-for="line-${lineNo}"]`) : null;
          if (slot) slot.textContent = error.msg;
          list.push(lineNo !== undefined ? t("line", { line: lineNo, message: error.msg }) : error.msg);
        }
        showErrors(refusal(response, problem), list.length ? list : [problem.detail || ""]);
        return;
      }
      const body = await response.json();
      localStorage.setItem(PHARMACIST_KEY, JSON.stringify(pharmacist));
      const result = $("dispense-result");
      const link = document.createElement("a");
      link.href = body.receipt_url;
      link.className = "button";
      link.textContent = t("receipt");
      const text = document.createElement("p");
      text.textContent = t("dispensed", { status: t(`status.${body.prescription_status}`) });
      text.dataset.dispenseId = body.dispense_id;
      result.replaceChildren(text, link);
      result.hidden = false;
      // Show what now remains (a fresh form, with a fresh idempotency key).
      await lookup(currentText);
      result.focus();
    } catch (error) {
      showErrors(t("network"), [String(error)]);
    } finally {
      sending = false;
      if (document.body.contains(button)) button.disabled = false;
    }
  });
}
