// Signs in to the console through the organization's OpenID provider (oidc-provider's
// own login and consent pages) in a real headless Chromium, and checks the page it
// lands on with axe-core. Called by tests/e2e/console.rs with one JSON argument:
//   {base, chromium, screenshots, organization, login}
// Prints {"page", "url", "violations", "overflow"} lines and {"done": {"who": …}}.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const config = JSON.parse(process.argv[2]);
mkdirSync(config.screenshots, { recursive: true });

async function check(page, name) {
  await page.waitForLoadState("load");
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help }));
  });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
  console.log(JSON.stringify({ page: name, url: page.url(), violations, overflow }));
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1024, height: 800 } })).newPage();
  await page.goto(`${config.base}/app/sign-in?organization=${config.organization}`);
  await check(page, "sso-sign-in");
  await page.getByRole("link", { name: "Sign in with your organization's provider" }).click();
  // The provider's own pages: its login form, then its consent.
  await page.waitForSelector("input[name=login]");
  await page.fill("input[name=login]", config.login);
  await page.fill("input[name=password]", "any password");
  await page.locator("button[type=submit]").first().click();
  for (let i = 0; i < 5 && !page.url().startsWith(config.base); i++) {
    await page.waitForLoadState("load");
    if (page.url().startsWith(config.base)) break;
    const submit = page.locator("button[type=submit]").first();
    if (await submit.count()) await submit.click();
    await page.waitForTimeout(300);
  }
  await page.waitForURL(`${config.base}/app/**`);
  await page.waitForSelector("main h1");
  await check(page, "sso-signed-in");
  const who = await page.locator(".who").innerText();
  console.log(JSON.stringify({ done: { who, url: page.url() } }));
} finally {
  await browser.close();
}
