// Anyone opens the public portal in a real headless Chromium, with no login and no cookie:
// every page renders, the checkpoint's signature checks in the browser, the flows draw
// their charts, and no page scrolls sideways at 1400 or 390 px. Prints one JSON object with
// what it saw; tests/e2e/test_public_browser.py asserts. Screenshots go to --out.
import { argument, launch } from "./browser.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = argument("base");
const out = argument("out");
const statement = argument("statement");
mkdirSync(out, { recursive: true });
const seen = { console_errors: [], pages: {}, layout: {} };
const pages = ["/public", "/public/flows", "/public/statements", `/public/statements/${statement}`,
               "/public/energy", "/public/checkpoint", "/public/wallets", "/public/verify"];

function measure() {
  const viewport = document.documentElement.clientWidth;
  const outside = [];
  for (const panel of document.querySelectorAll(".card, header.top, main, footer")) {
    const box = panel.getBoundingClientRect();
    if (box.left < -1 || box.right > viewport + 1) outside.push(panel.className || panel.tagName);
  }
  return { page_overflow: document.documentElement.scrollWidth - viewport, outside };
}

const browser = await launch();
try {
  for (const width of [1400, 390]) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on("console", (message) => {
      if (message.type() === "error") seen.console_errors.push(message.text());
    });
    for (const path of pages) {
      const answer = await page.goto(`${base}${path}`);
      const name = path === "/public" ? "holdings" : path.split("/").slice(2).join("-").slice(0, 32);
      if (width === 1400) {
        seen.pages[path] = { status: answer.status(), url: page.url(),
                             h1: (await page.textContent("h1")).trim() };
      }
      if (path === "/public/checkpoint") {
        await page.waitForSelector(".note-check.ok, .note-check.bad");
        seen.note_check = await page.getAttribute(".note-check", "class");
      }
      if (path === "/public/flows" && width === 1400) {
        seen.charts = await page.$$eval("[data-testid=flow-charts] svg", (svgs) => svgs.length);
      }
      if (path === "/public/energy" && width === 1400) {
        seen.energy_sites = await page.$$eval("[data-testid=energy-sites] tbody tr", (rows) => rows.length);
      }
      if (path === "/public" && width === 1400) {
        seen.consolidated = (await page.textContent("[data-testid=consolidated]")).replace(/\s+/g, " ").trim();
      }
      seen.layout[`${width} ${path}`] = await page.evaluate(measure);
      await page.screenshot({ path: join(out, `${width}-${name}.png`), fullPage: true });
    }
    seen.cookies = (await context.cookies()).length;
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
