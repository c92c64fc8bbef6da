// Opens the API's /docs (Swagger UI) and /redoc pages in headless Chromium with every
// request to another origin blocked (as on a machine with no internet), and reports what
// rendered, what was blocked and any console error (a CSP refusal shows up there).
// Screenshots go to the folder given by --out. Prints one JSON object.
import { argument, launch } from "./browser.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = argument("base");
const out = argument("out");
mkdirSync(out, { recursive: true });
const seen = { blocked: [], console_errors: [], local_requests: [] };

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base) || url.startsWith("data:") || url.startsWith("blob:")) {
      seen.local_requests.push(url.slice(base.length));
      return route.continue();
    }
    seen.blocked.push(url);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("console", (message) => {
    if (message.type() === "error") seen.console_errors.push(message.text());
  });
  page.on("pageerror", (error) => seen.console_errors.push(String(error)));

  // Swagger UI: the operations list, grouped by tag, from /openapi.json.
  await page.goto(`${base}/docs`);
  await page.locator(".opblock").first().waitFor();
  seen.swagger_operations = await page.locator(".opblock").count();
  seen.swagger_title = (await page.locator(".info .title").first().textContent()).trim();
  await page.screenshot({ path: join(out, "01-swagger-ui.png") });
  // Opening one operation shows its parameters and documented answers.
  await page.locator(".opblock-summary").first().click();
  await page.locator(".opblock .responses-wrapper").first().waitFor();
  seen.swagger_expanded = await page.locator(".opblock.is-open").count();

  // ReDoc: the side menu of operations and the API's title.
  await page.goto(`${base}/redoc`);
  await page.locator("h1").first().waitFor();
  await page.locator("[role=menuitem], .menu-content li").first().waitFor();
  seen.redoc_title = (await page.locator("h1").first().textContent()).trim();
  seen.redoc_menu_items = await page.locator(".menu-content li").count();
  await page.screenshot({ path: join(out, "02-redoc.png") });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
