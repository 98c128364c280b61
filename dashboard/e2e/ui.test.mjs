// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// load each page, drill into a prefix, pick a compare date, change top-k, run a query; asserts
// on the rendered rows and charts, and saves a screenshot of each step under OUT_DIR.
//   node ui.test.mjs http://127.0.0.1:PORT OUT_DIR EXPECTED_JSON
// EXPECTED_JSON: {"top3": [[location, trips], ...], "total_trips": N} from `quack query`.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";

const [base, outDir, expectedPath] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
fs.mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
const rows = (table) => page.$$eval(`#${table} tr`, (trs) => trs.slice(1).map((tr) => [...tr.cells].map((td) => td.textContent)));
const chartBars = (canvas) => page.evaluate((id) => Chart.getChart(document.getElementById(id))?.data.datasets[0].data.length ?? 0, canvas);
let step = 0;
const shot = async (name) => page.screenshot({ path: `${outDir}/${String(++step).padStart(2, "0")}-${name}.png`, fullPage: true });

try {
  // 1. Storage: the du view of the newest report.
  await page.goto(base + "/");
  await page.waitForFunction(() => document.querySelectorAll("#du-table tr").length > 1);
  const top = await rows("du-table");
  assert.ok(top.length >= 2, "storage rows");
  assert.ok(top.some((r) => r[0] === "backups/"), JSON.stringify(top));
  assert.ok((await chartBars("du-chart")) === top.length || (await chartBars("du-chart")) === 20);
  const title = await page.$eval("#du-table tr:nth-child(2) td:nth-child(2)", (td) => td.title);
  assert.match(title, /^\d+ bytes$/, "exact bytes on hover");
  await shot("storage");

  // Drill into a prefix: the breadcrumb grows and the rows are one level down.
  await page.click("#du-table a.prefix >> text=backups/");
  await page.waitForFunction(() => document.getElementById("crumbs").textContent.includes("backups"));
  await page.waitForFunction(() => [...document.querySelectorAll("#du-table tr")].slice(1).every((tr) => !tr.cells[0].textContent.startsWith("backups/")));
  const inner = await rows("du-table");
  assert.ok(inner.some((r) => r[0] === "2023/" || r[0] === "2024/"), JSON.stringify(inner));
  await shot("storage-drilled");

  // Compare with the oldest report: four columns of sizes, diffs coloured by sign.
  const oldest = await page.$eval("#du-compare", (s) => s.options[s.options.length - 1].value);
  await page.selectOption("#du-compare", oldest);
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(4)")?.textContent === "diff");
  const diffs = await page.$$eval("#du-table td.pos, #du-table td.neg", (tds) => tds.length);
  assert.ok(diffs > 0, "coloured diffs");
  await shot("storage-compare");

  // Back to the root, storage-class breakdown.
  await page.click("#crumbs a >> nth=0");
  await page.selectOption("#du-compare", "");
  await page.check("#du-by-class");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(2)")?.textContent === "storage class"
    && document.querySelector("#du-table th:nth-child(4)")?.textContent === "objects" && !document.getElementById("progress").textContent);
  const byClass = await rows("du-table");
  assert.ok(byClass.some((r) => r[1] === "GLACIER"), JSON.stringify(byClass.slice(0, 5)));
  await shot("storage-by-class");

  // 2. Trips: the dbt artifact's top pickup locations, then top-3.
  await page.click("nav button[data-tab=trips]");
  await page.waitForFunction(() => document.querySelectorAll("#top-table tr").length > 1);
  assert.equal((await rows("top-table")).length, 10);
  await page.fill("#top-k", "3");
  await page.click("#top-go");
  await page.waitForFunction(() => document.querySelectorAll("#top-table tr").length === 4);
  const top3 = (await rows("top-table")).map((r) => [Number(r[0]), Number(r[1])]);
  assert.deepEqual(top3, expected.top3);
  assert.equal(await chartBars("top-chart"), 3);
  assert.equal(await page.textContent("#top-total"), `total trips: ${expected.total_trips}`);
  assert.match(await page.textContent("#top-figures"), /round trip \d+ ms, worker execution \d+ ms, \d+ tasks \(\d+ warm, \d+ cold\)/);
  await shot("trips");

  // 3. Query console: a query, its rows, its plan; then a syntax error.
  await page.click("nav button[data-tab=query]");
  await page.click("#run");
  await page.waitForFunction(() => document.querySelectorAll("#q-table tr").length > 1);
  assert.equal((await rows("q-table")).length, 31);
  assert.match(await page.textContent("#q-plan"), /strategy: partial aggregate/);
  await shot("query");
  await page.fill("#sql", "SELEC 1");
  await page.click("#run");
  await page.waitForFunction(() => document.getElementById("q-error").textContent.includes("syntax error"));
  await shot("query-error");
  assert.deepEqual(errors, [], "no JavaScript errors");
  console.log(`dashboard UI: all checks passed; ${step} screenshots in ${outDir}`);
} finally {
  await browser.close();
}
