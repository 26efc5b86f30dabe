// The web console in Debian's Chromium (headless), driven by playwright-core:
// log in, open an image, move the time slider across a share, preview an
// impact, watch the live feed receive a write, restart the server and see the
// feed resume with no gap and no duplicate, verify the chain; then log in with
// an access key (requests signed in the page with WebCrypto).
// Every page error and console error fails the test, except the browser's own
// connection-refused messages while the server is deliberately down.
// Screenshots go to $CONSOLE_ARTIFACTS (default tests/console/artifacts);
// UPDATE_DOCS_SCREENSHOT=1 also refreshes docs/console-image.png.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { Server } = require('./server');

const ARTIFACTS = path.resolve(process.env.CONSOLE_ARTIFACTS || path.join(__dirname, 'artifacts'));
const REGION = 'cn-hangzhou';
const STEP_MS = 15000;  // any single wait in the page

function chromiumPath() {
  const candidates = [process.env.CHROMIUM_BIN, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(Boolean);
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`Chromium not found (tried ${candidates.join(', ')}): apt-get install chromium, or ./dev test`);
  return found;
}

// Console messages the browser itself logs for a refused connection while the
// server is stopped on purpose; anything else is a failure.
const kOutageNoise = /^(WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/v1\/feed\?.*' failed|Failed to load resource: net::ERR_CONNECTION_REFUSED)/;

test('web console end to end', { timeout: 240000 }, async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const server = new Server();
  let browser;
  try {
    await server.start();
    const [owner, recipient, other] = server.accounts.filter((a) => a.site === 'cn');
    assert.ok(owner && recipient && other, `three cn demo accounts expected, got ${JSON.stringify(server.accounts)}`);

    // An image from an instance; shared with the recipient, who launches from it.
    const sys = await server.ecs(owner, 'DescribeImages', { RegionId: REGION, ImageOwnerAlias: 'system' });
    const run = await server.ecs(owner, 'RunInstances', { RegionId: REGION, ImageId: sys.json.Images.Image[0].ImageId, Amount: 1 });
    const created = await server.ecs(owner, 'CreateImage', { RegionId: REGION, ImageName: 'golden',
      InstanceId: run.json.InstanceIdSets.InstanceIdSet[0] });
    const image = created.json.ImageId;
    const shared = await server.ecs(owner, 'ModifyImageSharePermission', { RegionId: REGION, ImageId: image, 'AddAccount.1': recipient.id });
    const launched = await server.ecs(recipient, 'RunInstances', { RegionId: REGION, ImageId: image, Amount: 1 });
    const recipientInstance = launched.json.InstanceIdSets.InstanceIdSet[0];

    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const errors = [];
    let outage = false;
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (outage && kOutageNoise.test(m.text())) return;
      errors.push(`console.error: ${m.text()}`);
    });
    const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

    // Login: /console redirects to /console/.
    const res = await page.goto(`${server.base}/console`);
    assert.equal(res.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/console/');
    await page.fill('input[name=token]', 'wrong-token');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error').filter({ hasText: 'InvalidToken' }).waitFor();
    // The browser logs the refused login (401) itself: expected, and only that.
    errors.splice(0, errors.length, ...errors.filter((e) => !/status of 401/.test(e)));
    await page.fill('input[name=token]', server.token);
    await page.click('#login button[type=submit]');
    await page.locator('#images').waitFor();
    await shot('01-images');

    // Image page, latest: the account grant, the recipient's instance.
    await page.click(`a[href="#/image/${image}"]`);
    await page.locator('#image-body[data-seq]').waitFor();
    const grant = page.locator(`#account-grants li[data-account="${recipient.id}"]`);
    await grant.waitFor();
    assert.match(await page.locator('#recipients').innerText(), /1 \/ 50 account-id recipients/);
    const instanceRow = page.locator(`#instances tr[data-instance="${recipientInstance}"]`);
    await instanceRow.waitFor();
    assert.match(await instanceRow.innerText(), /this image\s+ok/);

    // Time slider: the event just before the share, then the share itself.
    const seqs = await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
    const shareIndex = seqs.indexOf(shared.seq);
    assert.ok(shareIndex > 0, `share seq ${shared.seq} in the image history ${seqs}`);
    await page.locator('#slider').fill(String(shareIndex - 1));
    await page.locator(`#image-body[data-seq="${seqs[shareIndex - 1]}"]`).waitFor();
    assert.equal(await grant.count(), 0, 'no grant before the share');
    assert.match(await page.locator('#recipients').innerText(), /0 \/ 50/);
    assert.match(page.url(), new RegExp(`#/image/${image}/${seqs[shareIndex - 1]}$`));
    await shot('02-image-before-share');
    await page.locator('#slider').fill(String(shareIndex));
    await page.locator(`#image-body[data-seq="${shared.seq}"]`).waitFor();
    await grant.waitFor();
    assert.match(await page.locator('#as-of').innerText(), new RegExp(`seq ${shared.seq} .*ImageShared`));
    await page.locator('#slider').fill(String(seqs.length - 1));
    await page.locator(`#image-body[data-seq="${seqs[seqs.length - 1]}"]`).waitFor();
    await instanceRow.waitFor();

    // Impact preview of unsharing from the recipient (pre-filled).
    assert.equal(await page.inputValue('#impact input[name=accounts]'), recipient.id);
    await page.click('#impact button[type=submit]');
    const impact = page.locator('#impact-result');
    await impact.locator('ul.blocked').waitFor();
    assert.match(await impact.innerText(), /1 instance\(s\) would lose the ability to re-initialise; 1 account\(s\) would lose access/);
    assert.match(await impact.locator('ul.blocked').innerText(), new RegExp(`${recipientInstance} .*image_unshared`));
    assert.match(await impact.locator('ul.losing').innerText(), new RegExp(recipient.id));
    await shot('03-image-impact');
    if (process.env.UPDATE_DOCS_SCREENSHOT) {
      await page.screenshot({ path: path.join(__dirname, '../../docs/console-image.png') });
    }

    // Live: a write arrives.
    await page.click('#nav a[href="#/live"]');
    const state = page.locator('#feed-state');
    await page.locator('#feed-state[data-state=live]').waitFor();
    const write = await server.ecs(owner, 'ModifyImageSharePermission', { RegionId: REGION, ImageId: image, 'AddAccount.1': other.id });
    await page.locator(`#feed tr[data-seq="${write.seq}"]`).waitFor();
    const firstShown = Number(await page.locator('#feed tbody tr').first().getAttribute('data-seq'));
    await shot('04-live');

    // Restart: the page shows it is disconnected, then resumes after the last seq.
    outage = true;
    await server.stop();
    await page.locator('#feed-state[data-state=reconnecting]').waitFor();
    await server.start();
    const during = [];
    during.push((await server.ecs(owner, 'ModifyImageSharePermission', { RegionId: REGION, ImageId: image, 'RemoveAccount.1': other.id })).seq);
    during.push((await server.admin('POST', `/v1/admin/accounts/${owner.id}/encrypt-share-role`, '{"authorized":true}')).seq);
    await page.locator('#resumes li').waitFor({ timeout: 30000 });
    await page.locator('#feed-state[data-state=live]').waitFor();
    outage = false;
    during.push((await server.ecs(owner, 'ModifyImageSharePermission', { RegionId: REGION, ImageId: image, 'AddAccount.1': other.id })).seq);
    await page.locator(`#feed tr[data-seq="${during[2]}"]`).waitFor();
    const shown = await page.locator('#feed tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
    const expected = Array.from({ length: during[2] - firstShown + 1 }, (_, i) => firstShown + i);
    assert.deepEqual(shown, expected, 'every seq once, in order, across the restart');
    assert.match(await page.locator('#resumes').innerText(), new RegExp(`reconnected after seq ${write.seq}`));
    assert.equal(await state.getAttribute('data-state'), 'live');
    await shot('05-live-after-restart');

    // Filters hide rows in the page.
    await page.selectOption('#main select[name=type]', 'ImageUnshared');
    assert.equal(await page.locator('#feed tbody tr:not([hidden])').count(), 1);
    await page.selectOption('#main select[name=type]', '');

    // Audit: head and a chain verification.
    await page.click('#nav a[href="#/audit"]');
    await page.locator('#head-seq').waitFor();
    const head = Number(await page.locator('#head-seq').innerText());
    assert.ok(head >= during[2]);
    await page.click('#verify');
    await page.locator('#verify-ok').waitFor();
    assert.match(await page.locator('#verify-ok').innerText(), new RegExp(`head seq ${head}, hash ${await page.locator('#head-hash').innerText()}`));
    await shot('06-audit');

    // An account: signed requests from the page (ACS3) and a signed feed URL (v1).
    const keyPage = await context.newPage();
    keyPage.setDefaultTimeout(STEP_MS);
    keyPage.on('pageerror', (e) => errors.push(`pageerror (key): ${e.message}`));
    keyPage.on('console', (m) => { if (m.type() === 'error') errors.push(`console.error (key): ${m.text()}`); });
    await keyPage.goto(`${server.base}/console/`);
    await keyPage.check('input[value=key]');
    await keyPage.fill('input[name=access_key_id]', owner.key);
    await keyPage.fill('input[name=access_key_secret]', owner.secret);
    await keyPage.click('#login button[type=submit]');
    await keyPage.locator(`#images a[href="#/image/${image}"]`).waitFor();
    await keyPage.click(`a[href="#/image/${image}"]`);
    await keyPage.locator(`#account-grants li[data-account="${other.id}"]`).waitFor();
    await keyPage.click('#nav a[href="#/live"]');
    await keyPage.locator('#feed-state[data-state=live]').waitFor();
    await keyPage.locator(`#feed tr[data-seq="${during[2]}"]`).waitFor();
    await keyPage.click('#nav a[href="#/audit"]');
    await keyPage.click('#verify');
    await keyPage.locator('#verify-result .error').filter({ hasText: 'Forbidden' }).waitFor();
    errors.splice(0, errors.length, ...errors.filter((e) => !/status of 403/.test(e)));  // the refused verify, on purpose
    await keyPage.screenshot({ path: path.join(ARTIFACTS, '07-account-audit-forbidden.png'), fullPage: true });

    assert.deepEqual(errors, [], 'no page errors or console errors');
  } finally {
    if (browser) await browser.close();
    await server.destroy();
  }
});
