// The prescriber's signing keys, kept in this browser's IndexedDB and never exported.
//
// WebCrypto creates the ECDSA P-256 pair with extractable=false: the private key can sign but
// can never be read out, not even by this script. IndexedDB stores the CryptoKeyPair by
// structured clone, which keeps it non-extractable. Only the public half is ever shown.

const DB_NAME = "erx-console";
const STORE = "signing-keys";
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = work(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request ? request.result : undefined);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

export function cryptoAvailable() {
  return Boolean(window.isSecureContext && window.crypto && crypto.subtle && window.indexedDB);
}

const encoder = new TextEncoder();

export function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function publicPart(jwk) {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

// RFC 7638: SHA-256 over the required members in lexicographic order, as the registry shows it.
export async function thumbprint(jwk) {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(canonical));
  return base64url(new Uint8Array(digest));
}

export async function createKey() {
  const keyPair = await crypto.subtle.generateKey(ALGORITHM, false, ["sign", "verify"]);
  const publicJwk = publicPart(await crypto.subtle.exportKey("jwk", keyPair.publicKey));
  const record = {
    id: publicJwk.x,
    keyPair,
    publicJwk,
    thumbprint: await thumbprint(publicJwk),
    createdAt: new Date().toISOString(),
  };
  await withStore("readwrite", (store) => store.put(record));
  return record;
}

export async function listKeys() {
  const found = await withStore("readonly", (store) => store.getAll());
  return (found || []).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export async function deleteKey(id) {
  await withStore("readwrite", (store) => store.delete(id));
}

// The local key whose public half is the one the health department registered.
export async function findKeyFor(registeredJwk) {
  if (!registeredJwk || !registeredJwk.x) return null;
  const record = await withStore("readonly", (store) => store.get(registeredJwk.x));
  return record && record.publicJwk.y === registeredJwk.y ? record : null;
}

// A compact JWS (RFC 7515) with ES256: WebCrypto's ECDSA signature is already the raw r||s.
export async function signJws(privateKey, kid, payload) {
  const header = base64url(encoder.encode(JSON.stringify({ alg: "ES256", kid })));
  const body = base64url(encoder.encode(JSON.stringify(payload)));
  const input = `${header}.${body}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, encoder.encode(input));
  return `${input}.${base64url(new Uint8Array(signature))}`;
}
