// In-browser verification of ledger entries: the browser, not the server, decides.
//
// "Verify this entry" fetches the entry's exact canonical bytes and its inclusion proof,
// recomputes the leaf hash with WebCrypto SHA-256, checks the checkpoint note's Ed25519
// signature (C2SP signed note) when the proof is against a signed checkpoint, and runs
// RFC 9162 section 2.1.3.2's inclusion verification against that checkpoint's root.
// No build step, no dependencies. WebCrypto needs a secure context (HTTPS or localhost).
"use strict";

const enc = new TextEncoder();

function hexToBytes(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not a hex string");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64ToBytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

async function sha256(bytes) {
  if (!window.crypto || !crypto.subtle) {
    throw new Error("WebCrypto is unavailable: open the dashboard over HTTPS or localhost");
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (body) => sha256(concat(new Uint8Array([0]), body));
const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

// RFC 9162, 2.1.3.2. Sizes stay below 2^53, so plain numbers with floor division are exact.
async function verifyInclusion(leaf, index, treeSize, path, root) {
  if (!(index >= 0 && index < treeSize) || path.length > 64) return false;
  let fn = index, sn = treeSize - 1, r = leaf;
  for (const p of path) {
    if (p.length !== 32) return false;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// A C2SP signed-note verifier key: <name>+<hex key hash>+<base64(0x01 || Ed25519 key)>.
async function parseVerifierKey(text) {
  // The base64 key may itself contain "+": only the first two separate fields.
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  const name = first < 0 ? "" : text.slice(0, first);
  const hashHex = second < 0 ? "" : text.slice(first + 1, second);
  const encoded = second < 0 ? "" : text.slice(second + 1);
  if (!name || !hashHex || !encoded) throw new Error("malformed verifier key");
  const raw = base64ToBytes(encoded);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 signed-note key");
  const publicKey = raw.slice(1);
  const keyHash = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
  if (bytesToHex(keyHash) !== hashHex) throw new Error("verifier key hash does not match");
  return { name, publicKey, keyHash };
}

// Returns {origin, treeSize, root} when `keyText`'s key signed `note`; throws otherwise.
async function verifyNote(note, keyText) {
  const key = await parseVerifierKey(keyText);
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new Error("note has no signature block");
  const body = note.slice(0, split + 1);
  const [origin, sizeText, rootText] = body.split("\n");
  if (origin !== key.name) throw new Error(`origin ${origin} is not the key's name ${key.name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error("bad tree size line");
  const root = base64ToBytes(rootText);
  if (root.length !== 32) throw new Error("root hash is not 32 bytes");
  const lines = note.slice(split + 2).split("\n").filter((line) => line.length > 0);
  for (const line of lines) {
    if (!line.startsWith("\u2014 ")) throw new Error("malformed signature line");
    const [name, blob] = line.slice(2).split(" ");
    const raw = base64ToBytes(blob);
    if (name !== key.name || !equal(raw.slice(0, 4), key.keyHash)) continue;
    const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" },
                                                    false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, raw.slice(4),
                                          enc.encode(body));
    if (!ok) throw new Error("checkpoint signature does not verify");
    return { origin, treeSize: Number(sizeText), root, keyHash: key.keyHash };
  }
  throw new Error(`no signature by ${key.name} on the checkpoint`);
}

async function verifyEntry(seq, step) {
  const response = await fetch(`/api/ledger/entries/${seq}`, { credentials: "same-origin",
                                                               headers: { Accept: "application/json" } });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(`the server answered ${response.status}: ${problem.detail || ""}`);
  }
  const { entry, inclusion } = await response.json();
  const body = base64ToBytes(entry.body_base64);
  const fields = JSON.parse(new TextDecoder().decode(body));
  if (fields.seq !== seq) throw new Error(`the bytes are entry ${fields.seq}, not ${seq}`);
  step(`entry bytes: ${body.length} bytes of canonical JSON, kind ${fields.kind}`);
  const leaf = await leafHash(body);
  step(`leaf hash computed here: ${bytesToHex(leaf)}`);
  let root, against;
  if (inclusion.checkpoint) {
    const checked = await verifyNote(inclusion.checkpoint.note, inclusion.checkpoint.verifier_key);
    if (checked.treeSize !== inclusion.tree_size) throw new Error("proof and checkpoint sizes differ");
    root = checked.root;
    against = `signed checkpoint of ${checked.treeSize} entries (${checked.origin})`;
    step(`checkpoint signature valid (Ed25519, key hash ${bytesToHex(checked.keyHash)})`);
  } else {
    root = hexToBytes(inclusion.root_hash);
    against = `current tree head of ${inclusion.tree_size} entries (not yet in a signed checkpoint)`;
    step("no signed checkpoint covers this entry yet: checking against the current tree head");
  }
  const path = inclusion.audit_path.map(hexToBytes);
  step(`audit path: ${path.length} hashes; root ${bytesToHex(root)}`);
  const ok = await verifyInclusion(leaf, seq, inclusion.tree_size, path, root);
  if (!ok) throw new Error("the inclusion proof does not lead to the root");
  return against;
}

async function onVerify(button) {
  const seq = Number(button.dataset.seq);
  const result = document.querySelector(`[data-result-for="${seq}"]`);
  const steps = document.querySelector(`[data-steps-for="${seq}"]`);
  if (steps) steps.replaceChildren();
  const step = (text) => {
    if (!steps) return;
    const item = document.createElement("li");
    item.textContent = text;
    steps.appendChild(item);
  };
  result.className = "verify-result pending";
  result.textContent = "verifying…";
  button.disabled = true;
  try {
    const against = await verifyEntry(seq, step);
    result.className = "verify-result ok";
    result.textContent = `\u2713 Verified in your browser: included in the ${against}`;
    result.dataset.verified = "true";
  } catch (error) {
    result.className = "verify-result bad";
    result.textContent = `\u2717 Not verified: ${error.message}`;
    result.dataset.verified = "false";
  } finally {
    button.disabled = false;
  }
}

async function checkNotes() {
  for (const element of document.querySelectorAll(".note-check")) {
    try {
      const checked = await verifyNote(element.dataset.note, element.dataset.key);
      element.className = "note-check ok";
      element.textContent = `\u2713 valid, checked in your browser (size ${checked.treeSize})`;
    } catch (error) {
      element.className = "note-check bad";
      element.textContent = `\u2717 ${error.message}`;
    }
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.verify");
  if (button) onVerify(button);
});
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", checkNotes);
} else {
  checkNotes();
}
