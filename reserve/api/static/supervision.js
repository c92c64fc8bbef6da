// The supervision page's live feed: server-sent alerts are added on top of the table.
// EventSource resumes from the last alert id it saw when the stream ends or breaks.
"use strict";

function cell(row, label, text) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function acknowledge(form) {
  const result = form.querySelector(".result");
  const seq = form.querySelector("input[name=seq]").value.trim();
  const token = form.querySelector("input[name=token]").value.trim();
  const note = form.querySelector("input[name=note]").value;
  result.textContent = "Sending…";
  const response = await fetch(`/api/supervision/alerts/${encodeURIComponent(seq)}/acknowledge`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
    body: JSON.stringify({ note }),
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
    result.textContent = `Recorded: ledger entry ${answer.seq}, by ${answer.by} at ${answer.time.slice(0, 19).replace("T", " ")}.`;
    result.dataset.ok = "true";
    const cell = document.querySelector(`tr[data-seq="${answer.alert.seq}"] td[data-label=acknowledged]`);
    if (cell) cell.textContent = `${answer.by} at ${answer.time.slice(0, 19).replace("T", " ")}`;
    return;
  }
  const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
  result.textContent = "Refused (" + response.status + "): " + detail;
  result.dataset.ok = "false";
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.acknowledge");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      acknowledge(form).catch((error) => {
        form.querySelector(".result").textContent = "Failed: " + error.message;
      });
    });
  }
  const table = document.getElementById("alerts");
  if (!table || !window.EventSource) return;
  const body = table.querySelector("tbody");
  const count = document.querySelector("[data-testid=alert-count]");
  const cursor = document.querySelector("[data-testid=cursor]");
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    if (body.querySelector(`tr[data-seq="${alert.seq}"]`)) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.className = "alert live severity-" + alert.severity;
    row.dataset.seq = alert.seq;
    const link = document.createElement("a");
    link.href = "/dashboard/ledger/" + alert.seq;
    link.textContent = alert.seq;
    cell(row, "entry", "").appendChild(link);
    cell(row, "time", alert.time.slice(0, 19).replace("T", " "));
    cell(row, "alert", alert.kind).className = "status-" + alert.severity;
    cell(row, "vault", alert.vault);
    cell(row, "what happened", alert.text);
    cell(row, "acknowledged", alert.acknowledged.map((a) => a.by).join("; ") || "not yet");
    body.insertBefore(row, body.firstChild);
    count.textContent = body.querySelectorAll("tr.alert").length;
    cursor.textContent = alert.seq;
  });
});
