// Drives the dashboard in a real headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core: log in with a token, read the overview, open the ledger explorer,
// click "Verify this entry" and wait for the browser's own verdict, then show that a
// tampered proof is rejected; then see the holdings panel and open a pending proposal.
// Screenshots go to the folder given by --out.
// Prints one JSON object with what it saw; the pytest wrapper asserts on it.
import { argument, launch } from "./browser.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = argument("base");
const token = argument("token");
const out = argument("out");
const signedSeq = Number(argument("signed-seq"));
const headSeq = Number(argument("head-seq"));
const proposal = argument("proposal");
const pages = argument("pages").split(",");
const WIDTHS = [1400, 390];
mkdirSync(out, { recursive: true });
const seen = { console_errors: [] };
const timeout = 15000;

// The screenshot's name for "390 /dashboard/vaults/x" (test_dashboard_browser._slug).
function slug(key) {
  const [width, path] = [key.slice(0, key.indexOf(" ")), key.slice(key.indexOf(" ") + 1)];
  const parts = path.replace(/^\/+|\/+$/g, "").split("/").map((part) => part.slice(0, 24));
  return `layout-${width}-${parts.join("-") || "root"}`;
}

// Runs in the page: how far the page scrolls sideways, and every table or panel that
// sticks out. A table may be wider than its panel only inside a scrolling box (a
// .table-wrap or the panel itself), and that box must lie within the panel.
function measureLayout() {
  const viewport = document.documentElement.clientWidth;
  const outside = [];
  const within = (inner, outer) => inner.left >= outer.left - 1 && inner.right <= outer.right + 1;
  const name = (node) => `${node.tagName.toLowerCase()}${node.dataset.testid ? "#" + node.dataset.testid : ""}` +
    `${node.className ? "." + String(node.className).split(" ").join(".") : ""}`;
  for (const table of document.querySelectorAll("table")) {
    const panel = table.closest(".card") || document.querySelector("main");
    let box = table;
    for (let node = table.parentElement; node && node !== panel.parentElement; node = node.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(node).overflowX)) { box = node; break; }
    }
    if (!within(box.getBoundingClientRect(), panel.getBoundingClientRect())) {
      outside.push(`${name(table)} outside ${name(panel)}`);
    }
  }
  const page = { left: 0, right: viewport };
  for (const panel of document.querySelectorAll(".card, header.top, main, footer")) {
    if (!within(panel.getBoundingClientRect(), page)) outside.push(`${name(panel)} outside the page`);
  }
  return { page_overflow: document.documentElement.scrollWidth - viewport, outside };
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on("console", (message) => {
    if (message.type() === "error") seen.console_errors.push(message.text());
  });

  // 1. The login page, and a login with the token we were issued.
  await page.goto(`${base}/dashboard`);
  seen.redirected_to_login = page.url().endsWith("/login");
  await page.screenshot({ path: join(out, "01-login.png") });
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${base}/dashboard`), page.click("button[type=submit]")]);
  seen.who = (await page.textContent("[data-testid=who]")).trim();

  // 2. The overview: ledger size, latest checkpoint, its signature checked in the browser.
  await page.waitForSelector(".note-check.ok, .note-check.bad");
  seen.checkpoint_signature = (await page.textContent(".note-check")).trim();
  seen.ledger_size = Number(await page.textContent("[data-testid=ledger-size]"));
  seen.panels = await page.$$eval("[data-panel]", (nodes) =>
    nodes.map((node) => [node.dataset.panel, node.dataset.state]));
  await page.screenshot({ path: join(out, "02-overview.png"), fullPage: true });

  // 3. The ledger explorer: verify an entry under the signed checkpoint and one after it.
  await page.click("nav >> text=Ledger explorer");
  await page.waitForSelector("[data-testid=ledger-table]");
  seen.rows = await page.$$eval("tr[data-seq]", (rows) => rows.length);
  const verdicts = {};
  for (const seq of [signedSeq, headSeq]) {
    await page.click(`button.verify[data-seq="${seq}"]`);
    const result = page.locator(`[data-result-for="${seq}"][data-verified]`);
    await result.waitFor();
    verdicts[seq] = { verified: await result.getAttribute("data-verified"),
                      text: (await result.textContent()).trim() };
  }
  seen.verdicts = verdicts;
  await page.locator(`tr[data-seq="${signedSeq}"]`).scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(out, "03-explorer-verified.png") });

  // 4. One entry's page, with each verification step the browser took.
  await page.click(`tr[data-seq="${signedSeq}"] td a`);
  await page.waitForURL(`${base}/dashboard/ledger/${signedSeq}`);
  await page.click("button.verify");
  await page.locator(`[data-result-for="${signedSeq}"][data-verified]`).waitFor();
  seen.steps = await page.$$eval(".verify-steps li", (items) => items.map((i) => i.textContent));
  await page.screenshot({ path: join(out, "04-entry-steps.png"), fullPage: true });

  // 5. A lying server: flip one bit of the audit path; the browser must refuse it.
  await page.route(`**/api/ledger/entries/${signedSeq}`, async (route) => {
    const response = await route.fetch();
    const data = await response.json();
    const first = data.inclusion.audit_path[0];
    const flipped = (parseInt(first[0], 16) ^ 1).toString(16);
    data.inclusion.audit_path[0] = flipped + first.slice(1);
    await route.fulfill({ response, json: data });
  });
  await page.click("button.verify");
  const tampered = page.locator(`[data-result-for="${signedSeq}"][data-verified="false"]`);
  await tampered.waitFor();
  seen.tampered = (await tampered.textContent()).trim();
  await page.screenshot({ path: join(out, "05-tampered-proof-rejected.png") });
  await page.unroute(`**/api/ledger/entries/${signedSeq}`);

  // 6. Back on the overview: the holdings panel, from the ledger's deposit entries.
  await page.click("nav >> text=Overview");
  const holdings = page.locator("[data-panel=holdings]");
  await holdings.waitFor();
  seen.holdings = await holdings.locator("tbody tr").evaluateAll((rows) =>
    rows.map((row) => Array.from(row.cells, (cell) => cell.textContent.trim())));
  seen.holdings_charts = await holdings.locator("figure.chart svg polyline").count();
  // How far the holdings table is cut off by the box that scrolls it (0: it fits).
  seen.holdings_clipped = await holdings.locator("table").evaluate((table) => {
    for (let node = table.parentElement; node; node = node.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(node).overflowX)) {
        return node.scrollWidth - node.clientWidth;
      }
    }
    return 0;
  });
  await holdings.screenshot({ path: join(out, "06-holdings.png") });

  // 7. Open the pending proposal from its panel and read the policy's decision.
  await page.click(`[data-panel=proposals] tr[data-digest="${proposal}"] a.proposal-link`);
  await page.waitForURL(`${base}/dashboard/proposals/${proposal}`);
  seen.proposal_url = page.url();
  seen.proposal_state = (await page.textContent("[data-testid=proposal-state]")).trim();
  seen.proposal_amount = (await page.textContent("[data-testid=proposal-amount]")).trim();
  seen.decision = (await page.textContent("[data-testid=decision-explain]")).trim();
  seen.still_to_act = (await page.textContent("[data-testid=still-to-act]")).trim();
  seen.next_step = (await page.textContent("[data-testid=next-step-text]")).trim();
  seen.next_who = (await page.textContent("[data-testid=next-step-who]")).trim();
  await page.screenshot({ path: join(out, "07-proposal.png"), fullPage: true });

  // 8. The reserve pages: one row per transfer, the checkpoints, the ledger in sentences.
  await page.click("nav >> text=Transfers");
  seen.transfers = await page.$$eval("[data-testid=transfers-table] tr[data-digest]", (rows) =>
    rows.map((row) => [row.dataset.digest.slice(0, 12),
                       row.querySelector(".state").textContent.trim()]));
  await page.click("nav >> text=Checkpoints");
  await page.waitForFunction(() => !Array.from(document.querySelectorAll(".note-check"))
    .some((node) => !node.classList.contains("ok") && !node.classList.contains("bad")));
  seen.checkpoints = await page.$$eval("tr[data-tree-size]", (rows) =>
    rows.map((row) => [row.querySelector(".note-check").textContent.trim(),
                       row.querySelector("[data-label=consistency]").textContent.trim()]));
  await page.click("nav >> text=Ledger explorer");
  seen.sentences = await page.$$eval("[data-testid=sentence]", (nodes) =>
    nodes.map((node) => node.textContent.trim()));

  // 9. Every page at a desk and a phone width: measure overflow, save a screenshot.
  seen.layout = {};
  const anonymous = await browser.newContext();
  for (const width of WIDTHS) {
    for (const [who, path] of [...pages.map((path) => [page, path]),
                               [await anonymous.newPage(), "/login"]]) {
      await who.setViewportSize({ width, height: 900 });
      await who.goto(`${base}${path}`);
      await who.waitForLoadState("load");
      const key = `${width} ${path}`;
      seen.layout[key] = await who.evaluate(measureLayout);
      await who.screenshot({ path: join(out, `${slug(key)}.png`), fullPage: true });
    }
  }
  await anonymous.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
