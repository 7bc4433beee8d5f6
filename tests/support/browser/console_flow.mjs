// Drives a real headless Chromium (Debian's, through playwright-core) through the web
// console as its four kinds of users would, runs axe-core on every page it shows, and
// keeps a screenshot of each. Called by tests/e2e/console.rs with one JSON argument:
//   {base, chromium, screenshots, password, employee, approver, auditor, admin,
//    clean_receipt, unsure_receipt}
// It prints one JSON line per page checked ({"page", "url", "violations", "overflow"})
// and a last line {"done": {...what it saw...}}; any step that does not go as a person
// would expect throws, and the process exits non-zero.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const config = JSON.parse(process.argv[2]);
mkdirSync(config.screenshots, { recursive: true });

const seen = {};
const problems = [];

function expect(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
}

// axe on the page as it is now, a screenshot, and whether it fits its viewport.
async function check(page, name) {
  await page.waitForLoadState("load");
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
  console.log(JSON.stringify({ page: name, url: page.url(), violations: result, overflow }));
}

async function signIn(context, user) {
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${page.url()}: ${error.message}`));
  await page.goto(`${config.base}/app/sign-in`);
  await page.getByLabel("E-mail address").fill(user);
  await page.getByLabel("Password").fill(config.password);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
  expect(!page.url().includes("sign-in"), `${user} is signed in (at ${page.url()})`);
  return page;
}

async function waitForText(page, locator, pattern, what, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const text = await page.locator(locator).innerText().catch(() => "");
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the page says: ${text.slice(0, 500)}`);
    await page.waitForTimeout(250);
  }
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // The employee is on a phone, in German.
  const phone = await browser.newContext({
    viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: "de-DE",
    timezoneId: "Europe/Berlin",
  });
  let page = await signIn(phone, config.employee);
  await check(page, "employee-expenses");

  // A clean receipt: uploaded, scanned while the page watches, made a draft expense.
  await page.goto(`${config.base}/app/receipts/new`);
  await check(page, "employee-upload");
  await page.setInputFiles("#file", config.clean_receipt);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Upload" }).click()]);
  expect(/\/app\/receipts\/[0-9a-f-]{36}$/.test(page.url()), `the receipt's page (${page.url()})`);
  seen.clean_receipt = page.url().split("/").pop();
  await waitForText(page, "main h1", /scanned|needs review/, "the scan");
  await waitForText(page, "main", /The expense/, "the draft expense");
  await check(page, "employee-receipt-scanned");
  await Promise.all([page.waitForNavigation(), page.getByRole("link", { name: "The expense" }).click()]);
  seen.expense = page.url().split("/").pop();
  const amount = await page.locator("dl.facts dd data.money").first().innerText();
  seen.localized_amount = amount;
  expect(/€/.test(amount) && /,\d\d/.test(amount), `an amount formatted in German (${amount})`);
  await check(page, "employee-expense");
  const justification = page.getByLabel(/Justification/);
  if (await justification.count()) await justification.fill("Client meeting");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Submit for approval" }).click()]);
  await waitForText(page, "main h1", /submitted/, "the submitted expense");

  // A photo OCR is unsure of: reviewed on the phone, beside the image.
  await page.goto(`${config.base}/app/receipts/new`);
  await page.setInputFiles("#file", config.unsure_receipt);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Upload" }).click()]);
  seen.unsure_receipt = page.url().split("/").pop();
  await waitForText(page, "main h1", /needs review|scanned/, "the scan of the photo");
  await check(page, "employee-review");
  expect(await page.getByRole("button", { name: "Confirm" }).count() === 1, "a review form");
  await page.getByLabel("Merchant").fill("Ferry Kiosk");
  await page.getByLabel("Date").fill("2026-03-14");
  await page.getByLabel("Total").fill("7,50");
  await page.getByLabel("Currency").fill("usd");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Confirm" }).click()]);
  await waitForText(page, "main h1", /reviewed/, "the reviewed receipt");
  await check(page, "employee-reviewed");

  // Finding the expense again: search and filter.
  await page.goto(`${config.base}/app/expenses`);
  await page.getByLabel("Search").fill("Ferry");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Filter" }).click()]);
  await waitForText(page, "main", /Ferry Kiosk/, "the reviewed receipt's expense in the search");
  await check(page, "employee-search");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign out" }).click()]);
  expect(page.url().endsWith("/app/sign-in"), "signed out");
  await phone.close();

  // The approver, at a desk: the queue, the keyboard, approved.
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  page = await signIn(desk, config.approver);
  await page.goto(`${config.base}/app/approvals`);
  await check(page, "approver-queue");
  const row = page.locator(`tr[data-href="/app/expenses/${seen.expense}"]`);
  expect(await row.count() === 1, "the submitted expense in the queue");
  // Move to its row with j, approve with a.
  const rows = await page.locator("table[data-shortcuts] tbody tr").evaluateAll(
    (trs) => trs.map((tr) => tr.dataset.href));
  for (let i = 0; i < rows.indexOf(`/app/expenses/${seen.expense}`); i++) await page.keyboard.press("j");
  await Promise.all([page.waitForNavigation(), page.keyboard.press("a")]);
  expect(await page.locator(`tr[data-href="/app/expenses/${seen.expense}"]`).count() === 0, "it left the queue");
  await page.goto(`${config.base}/app/expenses/${seen.expense}`);
  await waitForText(page, "main h1", /approved/, "the approved expense");
  await check(page, "approver-expense");
  await desk.close();

  // The auditor: the expense's timeline, as of before the approval, a proof, the search.
  const audit = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await signIn(audit, config.auditor);
  await page.goto(`${config.base}/app/expenses/${seen.expense}/timeline`);
  // The notary adds events to the log moments after they are written.
  let timeline = "";
  for (let tries = 0; ; tries++) {
    timeline = await page.locator("main").innerText();
    if (!/not in the log yet/.test(timeline)) break;
    expect(tries < 60, "every event of the timeline in the verifiable log within 30 s");
    await page.waitForTimeout(500);
    await page.reload();
  }
  expect(/ExpenseSubmitted/.test(timeline) && /ExpenseApproved/.test(timeline), "submit and approval in the timeline");
  expect(/✓ in the verifiable log/.test(timeline), "the verification badge");
  await check(page, "auditor-timeline");
  const [proof] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("link", { name: "Download proof" }).first().click()]);
  const proofText = readFileSync(await proof.path(), "utf8");
  expect(JSON.parse(proofText).leaf_index !== undefined, "a proof with its leaf");
  // "As of" goes by when the store recorded an event, which under load falls seconds
  // after the command's own time: the recorded time, to the next whole second.
  const submittedAt = await page.locator("li", { hasText: "ExpenseSubmitted" }).locator("dd.recorded time[datetime]")
    .first().getAttribute("datetime");
  const asOf = new Date(new Date(submittedAt).getTime() + 1000).toISOString().slice(0, 19);
  await page.getByLabel("As of (UTC)").fill(asOf);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Show" }).click()]);
  const then = await waitForText(page, "#then + p", /submitted/, "the expense as of its submission");
  expect(!/ExpenseApproved/.test(await page.locator("main").innerText()), "no approval yet then");
  seen.as_of = then;
  await check(page, "auditor-as-of");
  await page.goto(`${config.base}/app/audit?aggregate_type=expense`);
  await check(page, "auditor-search");
  const [csv] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("link", { name: "Download CSV" }).click()]);
  const csvText = readFileSync(await csv.path(), "utf8");
  expect(csvText.startsWith("global_position,") && csvText.includes("ExpenseApproved"), "a CSV of the events");
  seen.csv_rows = csvText.trim().split("\n").length - 1;
  await audit.close();

  // The admin: a rebuild with its verdict, and the dead letter retried.
  const ops = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await signIn(ops, config.admin);
  await page.goto(`${config.base}/app/operations`);
  await check(page, "admin-operations");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Rebuild expenses" }).click()]);
  await waitForText(page, "section[aria-labelledby=models]", /identical/, "the rebuild's verdict");
  await check(page, "admin-rebuilt");
  const letter = page.locator("a", { hasText: "ReceiptUploaded" }).first();
  expect(await letter.count() === 1, "the OCR worker's dead letter");
  await Promise.all([page.waitForNavigation(), letter.click()]);
  await check(page, "admin-dead-letter");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Retry" }).click()]);
  await waitForText(page, "main h1", /retried/, "the retry handled");
  seen.dead_letter = page.url();
  await ops.close();

  // Reading works with JavaScript off: the same pages, amounts as the server wrote them.
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  page = await signIn(plain, config.employee);
  await page.goto(`${config.base}/app/expenses/${seen.expense}`);
  const raw = await page.locator("dl.facts dd data.money").first().innerText();
  expect(raw === "7.70 EUR", `the amount as the server wrote it (${raw})`);
  await page.goto(`${config.base}/app/expenses?status=approved`);
  await waitForText(page, "main table", /BLUE BOTTLE COFFEE/, "the approved expense, without script");
  // No axe here: it is a script, and scripts are off.
  await page.screenshot({ path: `${config.screenshots}/no-script-expenses.png`, fullPage: true });
  await plain.close();

  expect(problems.length === 0, `no errors in the browser's console: ${problems.join("; ")}`);
  console.log(JSON.stringify({ done: seen }));
} finally {
  await browser.close();
}
