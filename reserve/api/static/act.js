// Custodians act from the dashboard: upload a file signed offline (an approval from
// `reserve-sign approval sign`, or a signature share from `reserve-sign btc-sign|evm-sign`).
// The file is read here and sent with the custodian's own API token in the Authorization
// header, once: the session cookie never authorises a change, and no key reaches the server.
"use strict";

async function upload(form) {
  const result = form.querySelector(".result");
  const file = form.querySelector("input[type=file]").files[0];
  const token = form.querySelector("input[name=token]").value.trim();
  if (!file || !token) {
    result.textContent = "Choose the signed file and give your API token.";
    return;
  }
  const text = await file.text();
  let body;
  if (form.dataset.kind === "approval") {
    try {
      body = JSON.parse(text);
    } catch (error) {
      result.textContent = "Refused: the approval file is not JSON (" + error.message + ").";
      return;
    }
  } else {
    body = { share: text.trim() };
  }
  result.textContent = "Uploading…";
  const response = await fetch(form.dataset.url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  form.querySelector("input[name=token]").value = "";
  let answer = {};
  try {
    answer = await response.json();
  } catch (error) {
    answer = { detail: response.statusText };
  }
  if (response.ok) {
    const next = answer.next ? " Next: " + answer.next.text : "";
    result.textContent = "Recorded." + next;
    result.dataset.ok = "true";
    return;
  }
  const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
  result.textContent = "Refused (" + response.status + "): " + detail;
  result.dataset.ok = "false";
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.upload")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      upload(form).catch((error) => {
        form.querySelector(".result").textContent = "Upload failed: " + error.message;
      });
    });
  }
});
