// Words, numbers and dates as the page's language writes them, whatever the browser's own
// language: dates day first (dd/mm/yyyy), thousands grouped with "." in Vietnamese, money in ₫.
// Refusals are translated from their stable codes, never shown as the server's sentence.

export const pageLang = () => (document.documentElement.lang === "en" ? "en" : "vi");

export function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : {};
}

// 1500 -> "1.500" (vi) or "1,500" (en); no Intl, so the browser's locale cannot change it.
export function groupDigits(value, lang = pageLang()) {
  const sign = value < 0 ? "-" : "";
  const digits = String(Math.trunc(Math.abs(value)));
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, lang === "vi" ? "." : ",");
}

export const money = (value, lang = pageLang()) => `${groupDigits(value, lang)} ₫`;

export function fill(template, values = {}, lang = pageLang()) {
  return template.replace(/\{(\w+)\}/g, (_, name) => {
    if (!(name in values)) return "";
    const value = values[name];
    if (typeof value === "number" && Number.isInteger(value)) return groupDigits(value, lang);
    return Array.isArray(value) ? value.join(", ") : String(value);
  });
}

export function translator(messages, prefix = "") {
  return (key, values = {}) => fill(messages[prefix + key] ?? messages[key] ?? key, values);
}

// A field error {loc, msg, code, params} in the page's language.
export function errorText(messages, error) {
  const params = error.params || {};
  const keys = [`error.${error.code}.${params.rule}`, `error.${error.code}`, "error.invalid"];
  const key = keys.find((candidate) => candidate in messages);
  return key ? fill(messages[key], params) : "";
}

// A refusal as a whole, from its problem type (…/problems/<type>), else from its status.
export function problemText(messages, problem, status) {
  const type = String((problem && problem.type) || "").split("/problems/")[1];
  if (type && `web.problem.${type}` in messages) return messages[`web.problem.${type}`];
  const known = [400, 401, 403, 404, 405, 409, 413, 422, 429, 500];
  const fallback = known.includes(status) ? status : status >= 500 ? 500 : 400;
  return messages[`web.error.${fallback}.body`] || messages["error.invalid"] || String(status);
}

// "1500", "1.500", "1 500", "1.500 ₫" -> 1500; decimals and anything else -> null.
export function parseWhole(text) {
  const cleaned = String(text ?? "")
    .trim()
    .replace(/\s*(₫|đ|vnđ|vnd|đồng)\.?$/i, "");
  if (/^\d+$/.test(cleaned)) return Number(cleaned);
  if (/^\d{1,3}([.,\u00a0\u202f ])\d{3}(\1\d{3})*$/.test(cleaned)) return Number(cleaned.replace(/\D/g, ""));
  return null;
}

function realDay(y, m, d) {
  const probe = new Date(Date.UTC(y, m - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === m - 1 && probe.getUTCDate() === d && y >= 1900 && y <= 2200
    ? { y, m, d }
    : null;
}

// A day typed the Vietnamese way: 20/06/1985, 20-6-1985, 20.06.1985, 20061985, or 1985-06-20.
export function parseDay(text) {
  const value = String(text ?? "").trim();
  let match = /^(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})$/.exec(value);
  if (match) return realDay(Number(match[3]), Number(match[2]), Number(match[1]));
  match = /^(\d{2})(\d{2})(\d{4})$/.exec(value);
  if (match) return realDay(Number(match[3]), Number(match[2]), Number(match[1]));
  match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (match) return realDay(Number(match[1]), Number(match[2]), Number(match[3]));
  return null;
}

// A batch's expiry as printed on the box: a day, or a month (12/2027 = the end of that month).
export function parseExpiry(text) {
  const match = /^(\d{1,2})[/.\- ](\d{4})$/.exec(String(text ?? "").trim());
  if (match) {
    const y = Number(match[2]);
    const m = Number(match[1]);
    return m >= 1 && m <= 12 ? realDay(y, m, new Date(Date.UTC(y, m, 0)).getUTCDate()) : null;
  }
  return parseDay(text);
}

const pad = (n, width = 2) => String(n).padStart(width, "0");
export const formatDay = (day) => `${pad(day.d)}/${pad(day.m)}/${pad(day.y, 4)}`;
export const isoDay = (day) => `${pad(day.y, 4)}-${pad(day.m)}-${pad(day.d)}`;
export const compareDays = (a, b) => a.y - b.y || a.m - b.m || a.d - b.d;

// Today in Vietnam (UTC+7, no daylight saving), not in the computer's own time zone.
export function vnToday() {
  const now = new Date(Date.now() + 7 * 3600 * 1000);
  return { y: now.getUTCFullYear(), m: now.getUTCMonth() + 1, d: now.getUTCDate() };
}

// An instant as dd/mm/yyyy HH:MM in Vietnam time.
export function formatMoment(value) {
  const local = new Date(new Date(value).getTime() + 7 * 3600 * 1000);
  return `${pad(local.getUTCDate())}/${pad(local.getUTCMonth() + 1)}/${local.getUTCFullYear()} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}`;
}
