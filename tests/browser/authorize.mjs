// Logs in through Swagger UI's "Authorize" dialog (OAuth2 password flow against /login) and
// calls GET /protected with "Try it out", as a person would; proves the published security
// scheme works end to end through the proxy.
//
// Usage: node authorize.mjs BASE_URL [SCREENSHOT.png]
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';

const base = process.argv[2];
const screenshot = process.argv[3];
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base ?? '')) {
  console.error('authorize: BASE_URL must be http://127.0.0.1:PORT');
  process.exit(2);
}

const email = `swagger-${randomBytes(4).toString('hex')}@example.com`;
const password = randomBytes(12).toString('base64url');
const registered = await fetch(`${base}/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email, password }),
});
if (registered.status !== 201) {
  console.error(`authorize: POST /register answered ${registered.status}`);
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${base}/docs`);
  await page.locator('.opblock-summary-path[data-path="/protected"]').waitFor();

  await page.locator('.auth-wrapper button.authorize').click();
  await page.locator('#oauth_username').fill(email);
  await page.locator('#oauth_password').fill(password);
  await page.locator('.auth-btn-wrapper button.authorize').click();
  await page.locator('.auth-btn-wrapper button', { hasText: 'Logout' }).waitFor();
  await page.locator('.auth-btn-wrapper button.btn-done').click();

  const operation = page.locator('#operations-default-protected_protected_get');
  await operation.locator('.opblock-summary').click();
  await operation.locator('button.try-out__btn').click();
  await operation.locator('button.execute').click();
  const body = operation.locator('.live-responses-table .response-col_description pre').first();
  await body.waitFor();
  const text = await body.innerText();
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  if (!text.includes(`Access granted to ${email}`)) {
    console.error(`authorize: GET /protected after Authorize showed: ${text}`);
    process.exit(1);
  }
  console.log('authorize: Swagger UI logged in through /login and GET /protected answered 200');
} finally {
  await browser.close();
}
