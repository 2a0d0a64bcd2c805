// The prescription being written is kept in this browser until it is sent, per facility and
// prescriber: a session that ends (30 idle minutes), a reload or a closed tab loses nothing,
// and signing in again, here or in another tab, carries on with it.
import { csrfToken } from "./common.js";

const VERSION = "v1";
// Older drafts are dropped: a prescription is signed the day it is written.
const MAX_AGE_MS = 24 * 3600 * 1000;

export function draftKey(facility, prescriber) {
  return `erx.rx-draft.${VERSION}.${facility}.${prescriber}`;
}

export function loadDraft(key) {
  try {
    const saved = JSON.parse(localStorage.getItem(key) || "null");
    if (!saved || Date.now() - saved.savedAt > MAX_AGE_MS) return null;
    return saved;
  } catch {
    return null;
  }
}

export function saveDraft(key, draft) {
  try {
    localStorage.setItem(key, JSON.stringify({ ...draft, savedAt: Date.now() }));
  } catch {
    // Storage full or refused (private window): the form still works, it is just not kept.
  }
}

export function clearDraft(key) {
  localStorage.removeItem(key);
  localStorage.removeItem(`${key}.previous`);
}

// Keep a draft aside before a renewal or a correction fills the form, so it can come back.
export function setAside(key) {
  const current = localStorage.getItem(key);
  if (current) localStorage.setItem(`${key}.previous`, current);
  return Boolean(current);
}

export function takePrevious(key) {
  const previous = localStorage.getItem(`${key}.previous`);
  localStorage.removeItem(`${key}.previous`);
  return previous ? JSON.parse(previous) : null;
}

// After the session ended: ask whether this browser is signed in again (another tab), as the
// same facility and prescriber; then carry on with the new session's CSRF token.
export async function resumeSession(url, facility, prescriber) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    return "offline";
  }
  if (response.status === 401) return "ended";
  if (!response.ok) return "ended";
  const found = await response.json();
  if (found.facility_code !== facility) return "other-facility";
  if (found.prescriber_id !== prescriber) return "other-prescriber";
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) meta.content = found.csrf_token;
  else {
    const fresh = document.createElement("meta");
    fresh.name = "csrf-token";
    fresh.content = found.csrf_token;
    document.head.append(fresh);
  }
  return csrfToken() ? "resumed" : "ended";
}
