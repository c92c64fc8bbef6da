// A custodian acts from the dashboard in a real headless Chromium: log in, open a pending
// proposal, download the proposal document, upload an approval signed offline (and see a
// forged one refused), then open a transfer being signed, download its signing package
// and upload a signature share. The token is typed into the form, never stored.
// Prints one JSON object with what it saw; tests/e2e/test_dashboard_custodian.py asserts.
import { argument, launch } from "./browser.mjs";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const base = argument("base");
const token = argument("token");
const out = argument("out");
const proposal = argument("proposal");
const signing = argument("signing");
const vote = argument("vote");
const forged = argument("forged");
const share = argument("share");
mkdirSync(out, { recursive: true });
const seen = { console_errors: [], requests_with_cookie: [] };

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 },
                                             acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("console", (message) => {
    if (message.type() === "error") seen.console_errors.push(message.text());
  });
  page.on("request", (request) => {
    if (request.method() === "POST" && request.url().includes("/api/")) {
      const headers = request.headers();
      seen.requests_with_cookie.push(Boolean(headers.cookie));
    }
  });
  await page.goto(`${base}/login`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${base}/dashboard`), page.click("button[type=submit]")]);

  // 1. A pending proposal: download its document, upload a forged vote, then the real one.
  await page.goto(`${base}/dashboard/proposals/${proposal}`);
  const [download] = await Promise.all([page.waitForEvent("download"),
                                        page.click("[data-testid=download-proposal]")]);
  const document = JSON.parse(readFileSync(await download.path(), "utf8"));
  seen.downloaded_digest = document.document ? document.digest : null;
  const form = "[data-testid=upload-approval]";
  for (const [file, key] of [[forged, "forged"], [vote, "vote"]]) {
    await page.setInputFiles(`${form} input[type=file]`, file);
    await page.fill(`${form} input[name=token]`, token);
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction(
      (selector) => document.querySelector(selector).dataset.ok !== undefined &&
        !document.querySelector(selector).textContent.startsWith("Uploading"),
      `${form} .result`);
    seen[key] = (await page.textContent(`${form} .result`)).trim();
    seen[`${key}_token_cleared`] = (await page.inputValue(`${form} input[name=token]`)) === "";
    await page.evaluate((selector) => { delete document.querySelector(selector).dataset.ok; },
                        `${form} .result`);
  }
  await page.screenshot({ path: join(out, "custodian-approval.png"), fullPage: true });

  // 2. A transfer being signed: download the signing package, upload a share.
  await page.goto(`${base}/dashboard/proposals/${signing}`);
  const [packaged] = await Promise.all([page.waitForEvent("download"),
                                        page.click("[data-testid=download-package]")]);
  seen.package_format = JSON.parse(readFileSync(await packaged.path(), "utf8")).format;
  const shares = "[data-testid=upload-share]";
  await page.setInputFiles(`${shares} input[type=file]`, share);
  await page.fill(`${shares} input[name=token]`, token);
  await page.click(`${shares} button[type=submit]`);
  await page.waitForFunction((selector) => document.querySelector(selector).dataset.ok,
                             `${shares} .result`);
  seen.share = (await page.textContent(`${shares} .result`)).trim();
  await page.screenshot({ path: join(out, "custodian-share.png"), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
