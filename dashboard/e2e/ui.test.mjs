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
  const title = await page.$eval("#du-table tr:nth-child(2) td:nth-child(2)", (td) => td.title);
  assert.match(title, /^\d+ bytes$/, "exact bytes on hover");
  // Shares of the level add up to 100%; the treemap has a tile per non-empty prefix.
  const shares = top.map((r) => parseFloat(r[2]));
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) < 0.5 + 0.05 * shares.length, JSON.stringify(shares));
  const tiles = await page.$$eval("#du-treemap div", (ds) => ds.map((d) => d.title));
  assert.equal(tiles.length, Math.min(200, top.filter((r) => !r[1].startsWith("0 B")).length));
  assert.ok(tiles.some((t) => t.startsWith("backups/: ") && / of the bucket, \d+ objects$/.test(t)), JSON.stringify(tiles.slice(0, 3)));
  await shot("storage");

  // Drill into a prefix through its treemap tile: the breadcrumb grows and the rows are one level down.
  await page.click("#du-treemap div.drill[title^='backups/: ']");
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
  assert.match(await page.textContent("#du-legend"), /grew from .* shrank/, "the legend explains the colours");
  await shot("storage-compare");

  // Back to the root, storage-class breakdown.
  await page.click("#crumbs a >> nth=0");
  await page.selectOption("#du-compare", "");
  await page.selectOption("#du-view", "by:storage-class");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(2)")?.textContent === "storage class"
    && document.querySelector("#du-table th:nth-child(5)")?.textContent === "objects" && !document.getElementById("progress").textContent);
  const byClass = await rows("du-table");
  assert.ok(byClass.some((r) => r[1] === "GLACIER"), JSON.stringify(byClass.slice(0, 5)));
  assert.ok(byClass.every((r) => /%$/.test(r[3])), "each group's share");
  await shot("storage-by-class");

  // The other breakdowns, each with its own column.
  for (const [by, header, value] of [["age", "age", /day|year/], ["version", "version", /current/], ["size", "size range", /B/]]) {
    await page.selectOption("#du-view", "by:" + by);
    await page.waitForFunction((h) => document.querySelector("#du-table th:nth-child(2)")?.textContent === h && !document.getElementById("progress").textContent, header);
    const got = await rows("du-table");
    assert.ok(got.length > 0 && got.some((r) => value.test(r[1])), by + ": " + JSON.stringify(got.slice(0, 3)));
  }
  await shot("storage-by-age-version-size");

  // Storage Lens-style groups from NAME=FILTER.
  await page.selectOption("#du-view", "groups");
  await page.fill("#du-group", "big=min-size=1MiB; bak=prefix=backups/");
  await page.press("#du-group", "Enter");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(2)")?.textContent === "group"
    && [...document.querySelectorAll("#du-table tr")].slice(1).some((tr) => tr.cells[1].textContent === "bak"));
  const groups = new Set((await rows("du-table")).map((r) => r[1]));
  assert.deepEqual([...groups].sort(), ["bak", "big"]);
  await shot("storage-groups");

  // The largest objects, largest first.
  await page.selectOption("#du-view", "top");
  await page.fill("#du-top", "5");
  await page.press("#du-top", "Enter");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(1)")?.textContent === "key" && document.querySelectorAll("#du-table tr").length === 6);
  const largest = await page.$$eval("#du-table tr td:nth-child(2)", (tds) => tds.map((td) => Number(td.title.split(" ")[0])));
  assert.deepEqual(largest, [...largest].sort((a, b) => b - a), "largest first");
  await shot("storage-top");

  // Duplicates: groups of copies and what a cleanup saves.
  await page.selectOption("#du-view", "duplicates");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(1)")?.textContent === "ETag" && !document.getElementById("progress").textContent);
  const dups = await rows("du-table");
  assert.ok(dups.length > 0 && dups.every((r) => Number(r[3]) >= 2), JSON.stringify(dups.slice(0, 3)));
  assert.match(await page.textContent("#du-figures"), /saves \S+ \S+ \(\d+ bytes\)/);
  await shot("storage-duplicates");

  // History: a line of totals per report date and growth per prefix, coloured, with a legend.
  await page.selectOption("#du-view", "history");
  await page.waitForFunction(() => document.querySelector("#du-table th:nth-child(4)")?.textContent === "growth" && !document.getElementById("progress").textContent);
  const points = await page.evaluate(() => Chart.getChart(document.getElementById("du-chart")).data.datasets[0].data.length);
  const dates = await page.$$eval("#du-date option", (os) => os.length);
  assert.equal(points, dates, "a point per report");
  assert.ok((await page.$$eval("#du-table td.pos", (tds) => tds.length)) > 0, "growth in red");
  assert.match(await page.textContent("#du-legend"), /grew from .* shrank/);
  await shot("storage-history");
  await page.selectOption("#du-view", "");

  // 2. Trips: the dbt artifact's top pickup locations, then top-3.
  await page.click("nav button[data-tab=trips]");
  await page.waitForFunction(() => document.querySelectorAll("#top-table tr").length > 1);
  assert.equal((await rows("top-table")).length, 10);
  await page.fill("#top-k", "3");
  await page.click("#top-go");
  await page.waitForFunction(() => document.querySelectorAll("#top-table tr").length === 4);
  const trips = await rows("top-table");
  const top3 = trips.map((r) => [Number(r[0]), Number(r[3])]);
  assert.deepEqual(top3, expected.top3);
  assert.ok(trips.every((r) => r[1].length > 0 && r[2].length > 0), "zone and borough names: " + JSON.stringify(trips));
  assert.equal(await chartBars("top-chart"), 3);
  assert.equal(await page.textContent("#top-total"), `total trips: ${expected.total_trips}`);
  assert.match(await page.textContent("#top-figures"), /round trip \d+ ms, worker execution \d+ ms, \d+ tasks \(\d+ warm, \d+ cold\)/);
  await shot("trips");

  // 3. Query console: a query, its rows, its plan; then a syntax error.
  await page.click("nav button[data-tab=query]");
  await page.click("#run");
  await page.waitForFunction(() => document.querySelectorAll("#q-table tr").length > 1);
  assert.equal((await rows("q-table")).length, 31);
  // In process, the console's query runs as one DuckDB query (--split auto), and says so.
  assert.match(await page.textContent("#q-plan"), /strategy: single task over all files: in process, one DuckDB query/);
  assert.match(await page.textContent("#q-plan"), /run on the coordinator's DuckDB/);
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
