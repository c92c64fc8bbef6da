// The supervisor watches the reserve in a real headless Chromium: log in, open the
// supervision page (alerts from the ledger, the licence register), signal that the page is
// open, and wait for an alert recorded meanwhile to arrive live over server-sent events.
// Prints one JSON object with what it saw; tests/e2e/test_supervision_browser.py asserts.
import { argument, launch } from "./browser.mjs";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const base = argument("base");
const token = argument("token");
const out = argument("out");
const ready = argument("ready");
mkdirSync(out, { recursive: true });
const seen = { console_errors: [] };

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("console", (message) => {
    if (message.type() === "error") seen.console_errors.push(message.text());
  });
  await page.goto(`${base}/login`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${base}/dashboard`), page.click("button[type=submit]")]);
  await page.goto(`${base}/dashboard/supervision`);
  seen.kinds = await page.$$eval("#alerts tr.alert td[data-label=alert]",
                                 (cells) => cells.map((cell) => cell.textContent.trim()));
  seen.licences = await page.$$eval("[data-testid=licences] tbody tr",
                                    (rows) => rows.map((row) => row.textContent.replace(/\s+/g, " ").trim()));
  writeFileSync(ready, "open\n");
  await page.waitForSelector("#alerts tr.alert.live");
  seen.live = await page.$$eval("#alerts tr.alert.live td[data-label='what happened']",
                                (cells) => cells.map((cell) => cell.textContent.trim()));
  seen.count = (await page.textContent("[data-testid=alert-count]")).trim();
  // Acknowledge the live alert with the supervisor's token, typed in, never stored.
  const form = "[data-testid=acknowledge]";
  const liveSeq = await page.getAttribute("#alerts tr.alert.live", "data-seq");
  await page.fill(`${form} input[name=seq]`, liveSeq);
  await page.fill(`${form} input[name=note]`, "seen; asking the exchange");
  await page.fill(`${form} input[name=token]`, token);
  await page.click(`${form} button[type=submit]`);
  await page.waitForFunction((selector) => document.querySelector(selector).dataset.ok,
                             `${form} .result`);
  seen.acknowledged = (await page.textContent(`${form} .result`)).trim();
  seen.acknowledged_cell = (await page.textContent(
    `#alerts tr[data-seq="${liveSeq}"] td[data-label=acknowledged]`)).trim();
  seen.token_cleared = (await page.inputValue(`${form} input[name=token]`)) === "";
  await page.screenshot({ path: join(out, "supervision.png"), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
