#!/usr/bin/env node
// End-to-end walk through the govlab stepper served by Voila, in Debian's chromium driven
// by playwright-core (no browser download: executablePath is /usr/bin/chromium).
//
// Usage:
//   node stepper.e2e.mjs --url http://127.0.0.1:8866/ --format delta --artifacts DIR
//        [--scenario walk|lifecycle] [--whatif] [--existing-rows N]
//   (or GOVLAB_E2E_URL, GOVLAB_E2E_FORMAT, GOVLAB_E2E_ARTIFACTS, GOVLAB_E2E_CHROMIUM)
//
// scenario "walk" (default), one page (one Voila kernel): dataset healthcare, size tiny,
// the given format, governance as loaded (with --whatif: a draft, What if?, Save, Reset to
// shipped), role clinician, validate, hydrate (seed through the UI; with --existing-rows N
// a table of N rows exists and must be refused as the wrong size), Back to Validate (it
// must now count the seeded table), search "asthma" twice (cache MISS then HIT) with the
// roles compared; then Back to the role stage, business_user, forward to search (MISS,
// HIT), and a name only a masked column holds (nothing found, and the page says why).
//
// scenario "lifecycle": the kernel starts its own API (the page shows the start-up), a
// short walk to a search, then {"event": "outage", "serverPid": N} on stdout and a wait
// for DIR/outage.done (the harness stops that API): Search must fail in words and clear
// the page. The page is closed (Voila shuts its kernel down), a second page starts a new
// API ({"event": "page2", "serverPid": N}) and is closed too.
//
// A screenshot of every stage goes to DIR/NN-<name>.png. The summary, one JSON object on
// stdout (the last line), is what tests/test_browser.py asserts on; progress lines go to
// stderr. Exit code 0 when the scenario completed, 1 (with {"ok": false, "error": ...}).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.GOVLAB_E2E_URL ?? 'http://127.0.0.1:8866/' },
    format: { type: 'string', default: process.env.GOVLAB_E2E_FORMAT ?? 'delta' },
    artifacts: {
      type: 'string',
      default: process.env.GOVLAB_E2E_ARTIFACTS ?? 'test-artifacts/browser',
    },
    chromium: {
      type: 'string',
      default: process.env.GOVLAB_E2E_CHROMIUM ?? '/usr/bin/chromium',
    },
    query: { type: 'string', default: 'asthma' },
    scenario: { type: 'string', default: 'walk' },
    whatif: { type: 'boolean', default: false },
    'existing-rows': { type: 'string', default: '' },
    'outage-timeout-ms': { type: 'string', default: '60000' },
    'first-role': { type: 'string', default: 'clinician' },
    'second-role': { type: 'string', default: 'business_user' },
    // Bounded waits: the first render waits for a Voila kernel, hydration for a seed job.
    'render-timeout-ms': { type: 'string', default: '120000' },
    'step-timeout-ms': { type: 'string', default: '30000' },
    'seed-timeout-ms': { type: 'string', default: '120000' },
  },
});

const RENDER_MS = Number(opts['render-timeout-ms']);
const STEP_MS = Number(opts['step-timeout-ms']);
const SEED_MS = Number(opts['seed-timeout-ms']);
const OUTAGE_MS = Number(opts['outage-timeout-ms']);
const EXISTING_ROWS = opts['existing-rows'] ? Number(opts['existing-rows']) : null;
const FORMAT = opts.format;
const QUERY = opts.query;
const ARTIFACTS = path.resolve(opts.artifacts);
// The labels of the format ToggleButtons (govlab.lab.widgets.state.FORMAT_LABELS).
const FORMAT_LABELS = { delta: 'Delta (v4)', parquet: 'Parquet', iceberg: 'Iceberg' };
if (!(FORMAT in FORMAT_LABELS)) {
  process.stderr.write(`unknown format ${FORMAT}; formats: ${Object.keys(FORMAT_LABELS)}\n`);
  process.exit(2);
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const started = Date.now();
const log = (msg) => process.stderr.write(`[e2e ${FORMAT} +${Date.now() - started}ms] ${msg}\n`);

const summary = {
  ok: false,
  format: FORMAT,
  dataset: 'healthcare',
  size: 'tiny',
  query: QUERY,
  url: opts.url,
  stages: [],
  screenshots: [],
  roles: {},
  hydrate: null,
  validate: {},
  checks: {},
  consoleErrors: [],
  pageErrors: [],
  timings: {},
};

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await tallShot(page, { path: file, fullPage: true });
  summary.screenshots.push(path.relative(process.cwd(), file));
  return file;
}

/** One element, whole (not cut at the viewport): the docs' picture of a stage. */
async function elementShot(page, locator, file) {
  await tallShot(page, { path: file }, locator);
}

/**
 * Voila scrolls inside its own containers, so a "full page" shot stops at the viewport:
 * grow the viewport to the tallest scrolling content instead (bounded), then shoot the
 * page, or only `locator`'s box.
 */
async function tallShot(page, options, locator = null) {
  const height = await page.evaluate(() => {
    let h = document.documentElement.scrollHeight;
    for (const el of document.querySelectorAll('body, body *')) {
      const oy = getComputedStyle(el).overflowY;
      if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight) {
        h = Math.max(h, el.scrollHeight + el.getBoundingClientRect().top);
      }
    }
    return Math.ceil(h);
  });
  const viewport = page.viewportSize();
  const tall = Math.min(Math.max(height, viewport.height), 6000);
  await page.setViewportSize({ width: viewport.width, height: tall });
  try {
    const clip = locator ? await locator.boundingBox() : null;
    await page.screenshot(clip ? { ...options, clip } : options);
  } finally {
    await page.setViewportSize(viewport);
  }
}

const lab = (page) => page.locator('.govlab-lab');

async function text(locator) {
  return ((await locator.count()) ? await locator.first().innerText() : '').trim();
}

async function waitStage(page, name, timeout = STEP_MS) {
  await page
    .locator(`.govlab-stage-title h3.govlab-current[data-stage="${name}"]`)
    .waitFor({ timeout });
  await page.locator(`.govlab-panel-host .govlab-panel-${name}`).waitFor({ timeout });
  summary.stages.push(name);
  log(`stage ${name}`);
}

async function next(page, expected) {
  const button = lab(page).locator('button.govlab-next');
  // Next is enabled only when the current stage is complete: click() waits for that.
  await button.click({ timeout: STEP_MS });
  await waitStage(page, expected);
}

async function back(page, expected) {
  await lab(page).locator('button.govlab-back').click({ timeout: STEP_MS });
  await waitStage(page, expected);
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Wait (bounded) until fn() is truthy; a clear error naming what was awaited otherwise. */
async function until(what, fn, timeout = STEP_MS, pollMs = 100) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Click the ToggleButtons option whose label is `label` and wait until it is the active one. */
async function chooseToggle(page, cls, label) {
  const button = lab(page)
    .locator(`.${cls} button.widget-toggle-button`)
    .filter({ hasText: new RegExp(`^\\s*${escapeRe(label)}\\s*$`) });
  await button.click({ timeout: STEP_MS });
  await until(`"${label}" to be the active ${cls} option`, async () =>
    /\bmod-active\b/.test((await button.getAttribute('class')) ?? ''),
  );
}

/** Everything the search view shows that changes when a search answers. */
async function searchSnapshot(page) {
  return page.evaluate(() => {
    const root = document.querySelector('.govlab-lab .govlab-search');
    if (!root) return null;
    const q = (sel) => root.querySelector(sel);
    const txt = (sel) => (q(sel)?.textContent ?? '').trim();
    return JSON.stringify({
      cache: txt('.govlab-cache'),
      total: txt('.govlab-total'),
      page: txt('.govlab-page'),
      took: txt('.govlab-took'),
      error: txt('.govlab-search-error'),
      table: q('.govlab-results')?.innerHTML ?? '',
    });
  });
}

/**
 * Wait until the search view differs from `before` and holds still (three equal reads):
 * widget updates arrive as separate messages, and a re-shown view first renders its old
 * state, so a snapshot equal to `before` never counts.
 */
async function waitSearchChange(page, before, timeout = STEP_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  let stable = 0;
  for (;;) {
    const now = await searchSnapshot(page);
    const changed = now !== null && now !== before && Boolean(JSON.parse(now).cache);
    stable = changed && now === last ? stable + 1 : 0;
    last = now;
    if (stable >= 3) return now;
    if (Date.now() > deadline) {
      throw new Error(`the search view did not change and settle within ${timeout} ms: ${now}`);
    }
    await page.waitForTimeout(150);
  }
}

/** What one search shows: counts, the cache indicator, masked cells and columns. */
async function readSearch(page) {
  return page.evaluate(() => {
    const root = document.querySelector('.govlab-lab .govlab-search');
    const txt = (sel) => (root.querySelector(sel)?.textContent ?? '').trim();
    const totalText = txt('.govlab-total');
    const cacheSpan = root.querySelector('.govlab-cache span');
    const cacheClass = cacheSpan
      ? [...cacheSpan.classList].find((c) => /^govlab-cache-(hit|miss|bypass)$/.test(c)) ?? null
      : null;
    const table = root.querySelector('.govlab-results table.govlab-rows');
    const rows = table ? [...table.querySelectorAll('tbody tr')] : [];
    const colValues = (col) =>
      rows.map((r) => r.querySelector(`td[data-col="${col}"]`)?.textContent ?? null);
    const maskedCells = table ? [...table.querySelectorAll('td.govlab-masked')] : [];
    const maskedHeaders = table ? [...table.querySelectorAll('th.govlab-masked-col')] : [];
    const columns = table
      ? [...table.querySelectorAll('thead th')].map((th) => th.getAttribute('data-col'))
      : [];
    return {
      totalText,
      total: totalText ? Number(totalText.replace(/[^0-9]/g, '')) : null,
      pageText: txt('.govlab-page'),
      cacheText: txt('.govlab-cache'),
      cache: cacheClass ? cacheClass.replace('govlab-cache-', '').toUpperCase() : null,
      took: txt('.govlab-took'),
      error: txt('.govlab-search-error'),
      rowsOnPage: rows.length,
      columns,
      maskedCells: maskedCells.length,
      maskedCellsWithTitle: maskedCells.filter((td) =>
        (td.getAttribute('title') ?? '').startsWith('masked: '),
      ).length,
      maskedColumns: [...new Set(maskedCells.map((td) => td.getAttribute('data-col')))].sort(),
      maskedHeaderColumns: maskedHeaders.map((th) => th.getAttribute('data-col')).sort(),
      clinicianIds: [...new Set(colValues('clinician_id'))].sort(),
      regions: [...new Set(colValues('region'))].sort(),
      names: colValues('name'),
    };
  });
}

async function searchAsRole(page, role, record, enteredBefore) {
  // Entering the search stage runs the current query once for this role; the stage is
  // complete (its header button "done") when that page has arrived.
  await lab(page)
    .locator('button.govlab-stage-search.govlab-stage-done')
    .waitFor({ timeout: STEP_MS });
  const entered = await waitSearchChange(page, enteredBefore);
  const input = lab(page).locator('.govlab-search-q input');
  const current = await input.inputValue();
  record.onEnter = { query: current, ...(await readSearch(page)) };
  const searches = [];
  let snap = entered;
  if (current !== QUERY) {
    // A new query: type it and press Enter (the Text syncs on Enter), the first search.
    await input.fill(QUERY);
    await input.press('Enter');
    snap = await waitSearchChange(page, snap);
  }
  const first = await readSearch(page);
  first.how = current !== QUERY ? 'typed + Enter' : 'entering the search stage';
  searches.push(first);
  await screenshot(page, `search-${role}-${(first.cache ?? 'none').toLowerCase()}`);
  // The same search again, with the Search button: served from the page cache.
  await lab(page).locator('button.govlab-search-go').click({ timeout: STEP_MS });
  snap = await waitSearchChange(page, snap);
  const second = await readSearch(page);
  second.how = 'Search button, same query';
  searches.push(second);
  await screenshot(page, `search-${role}-${(second.cache ?? 'none').toLowerCase()}`);
  record.searches = searches;
  record.cacheSequence = searches.map((s) => s.cache);
  Object.assign(record, {
    total: second.total,
    rowsOnPage: second.rowsOnPage,
    maskedCells: second.maskedCells,
    maskedColumns: second.maskedColumns,
    clinicianIds: second.clinicianIds,
    regions: second.regions,
  });
  log(`${role}: total ${second.total}, cache ${record.cacheSequence.join(' -> ')}`);
  return snap;
}

async function pickRole(page, role) {
  const select = lab(page).locator('.govlab-role select');
  const shown = () =>
    page.evaluate(() => {
      const root = document.querySelector('.govlab-lab .govlab-role-picker');
      return JSON.stringify([
        root?.querySelector('select')?.value ?? null,
        root?.querySelector('.govlab-attrs input')?.value ?? null,
        root?.querySelector('.govlab-role-filter')?.innerHTML ?? null,
      ]);
    });
  const before = JSON.parse(await shown());
  await select.selectOption(role, { timeout: STEP_MS });
  // The kernel answers a new role with its attributes and bound filter: wait for both.
  await until(`the role picker to show ${role}`, async () => {
    const [value, attrs, filter] = JSON.parse(await shown());
    const changed = before[0] === role || (attrs !== before[1] && filter !== before[2]);
    return value === role && changed && filter && filter.includes('govlab-filter');
  });
  await page.waitForTimeout(200);
  const attrs = await lab(page).locator('.govlab-attrs input').inputValue();
  const filter = await text(lab(page).locator('.govlab-role-filter code.govlab-filter'));
  return { attrs, filter };
}

async function validated(page, role) {
  // Entering Validate runs it for the acting role; wait until it names that role (or
  // shows the API's error, which fails at once with the message the page shows).
  await page.waitForFunction(
    (r) => {
      const f = document.querySelector('.govlab-lab .govlab-validate-filter');
      const rows = document.querySelector('.govlab-lab .govlab-validate-rows');
      const error = document.querySelector('.govlab-lab .govlab-validate-error');
      if (error && error.textContent.trim()) return true;
      return f && f.textContent.includes(`for ${r}:`) && rows && rows.textContent.trim();
    },
    role,
    { timeout: STEP_MS },
  );
  const error = await text(lab(page).locator('.govlab-validate-error'));
  if (error) throw new Error(`Validate as ${role} shows an error: ${error}`);
  return {
    rows: await text(lab(page).locator('.govlab-validate-rows')),
    filter: await text(lab(page).locator('.govlab-validate-filter')),
    masks: await text(lab(page).locator('.govlab-validate-masks')),
  };
}

// ---------------------------------------------------------------------- issue 13 checks

/** Record every text the start-up banner shows, from the first paint on. */
async function watchBanner(page) {
  await page.addInitScript(() => {
    window.__govlabBanner = [];
    const seen = () => {
      const el = document.querySelector('.govlab-server-status');
      if (!el) return;
      const entry = `${el.getAttribute('data-phase')}|${el.textContent.trim()}`;
      const list = window.__govlabBanner;
      if (list[list.length - 1] !== entry) list.push(entry);
    };
    new MutationObserver(seen).observe(document, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
}

async function bannerSeen(page) {
  return page.evaluate(() => window.__govlabBanner ?? []);
}

/** Labels wider than their buttons, in the given containers (cut-off text). */
async function cutOffLabels(page, selector) {
  return page.evaluate((sel) => {
    const cut = [];
    for (const b of document.querySelectorAll(sel)) {
      if (b.scrollWidth > b.clientWidth + 1) cut.push(b.textContent.trim());
    }
    return cut;
  }, selector);
}

/** Relative luminance difference between the active toggle and an inactive one. */
async function toggleContrast(page, cls) {
  return page.evaluate((c) => {
    const lum = (el) => {
      const [r, g, b] = getComputedStyle(el)
        .backgroundColor.match(/\d+/g)
        .slice(0, 3)
        .map((v) => Number(v) / 255);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const buttons = [...document.querySelectorAll(`.${c} button.widget-toggle-button`)];
    const active = buttons.find((b) => b.classList.contains('mod-active'));
    const other = buttons.find((b) => !b.classList.contains('mod-active'));
    return active && other ? Math.abs(lum(active) - lum(other)) : null;
  }, cls);
}

/** Whether the policy textarea stays inside the panel that holds it. */
async function textareaInside(page) {
  return page.evaluate(() => {
    const ta = document.querySelector('.govlab-policy-editor textarea');
    const host = document.querySelector('.govlab-panel-host');
    if (!ta || !host) return null;
    return ta.getBoundingClientRect().right <= host.getBoundingClientRect().right + 1;
  });
}

async function stageDone(page, name) {
  const cls = await lab(page).locator(`button.govlab-stage-${name}`).getAttribute('class');
  return /\bgovlab-stage-done\b/.test(cls ?? '');
}

/** What the comparison at Validate or Search shows: bars, sides and the record. */
async function readCompare(page, mode) {
  return page.evaluate((m) => {
    const root = document.querySelector(`.govlab-lab .govlab-compare-${m}`);
    if (!root) return null;
    const bars = [...root.querySelectorAll('tr.govlab-bar')].map((tr) => ({
      role: tr.getAttribute('data-role'),
      value: tr.getAttribute('data-value'),
      of: tr.getAttribute('data-of'),
      label: tr.querySelector('.govlab-bar-label')?.textContent.trim(),
    }));
    const sides = [...root.querySelectorAll('.govlab-compare-side')].map((d) =>
      d.getAttribute('data-role'),
    );
    const table = root.querySelector('table.govlab-record-table');
    const cells = table
      ? [...table.querySelectorAll('tbody tr')].flatMap((tr) =>
          [...tr.querySelectorAll('td')].map((td) => ({
            column: tr.getAttribute('data-col'),
            role: td.getAttribute('data-role'),
            kind: td.className.replace('govlab-', ''),
            text: td.textContent,
          })),
        )
      : [];
    return { bars, sides, key: table?.getAttribute('data-key') ?? null, cells };
  }, mode);
}

async function waitCompare(page, mode, roles) {
  await page.waitForFunction(
    ([m, want]) => {
      const root = document.querySelector(`.govlab-lab .govlab-compare-${m}`);
      const got = [...(root?.querySelectorAll('tr.govlab-bar') ?? [])].map((tr) =>
        tr.getAttribute('data-role'),
      );
      return want.every((r) => got.includes(r)) && root.querySelector('table.govlab-record-table');
    },
    [mode, roles],
    { timeout: STEP_MS },
  );
}

/** Governance for trainers: a draft, What if?, Save, Reset to shipped. */
async function policyWhatIf(page) {
  const area = lab(page).locator('.govlab-policy-editor textarea');
  const shipped = await area.inputValue();
  const from = "row_filter: \"region in ['NE', 'SE', 'MW']\"";
  const to = "row_filter: \"region in ['NE', 'SE', 'MW', 'W']\"";
  if (!shipped.includes(from)) throw new Error('the shipped business_user filter was not found');
  await area.fill(shipped.replace(from, to));
  const whatif = lab(page).locator('button.govlab-policy-whatif');
  await until('What if? to be enabled', async () => !(await whatif.isDisabled()));
  await whatif.click({ timeout: STEP_MS });
  const row = lab(page).locator('.govlab-whatif tr[data-role="business_user"]');
  await row.waitFor({ timeout: STEP_MS });
  const result = {
    changed: /govlab-whatif-changed/.test((await row.getAttribute('class')) ?? ''),
    saved: await text(row.locator('.govlab-whatif-saved')),
    draft: await text(row.locator('.govlab-whatif-draft')),
    clinicianChanged: /govlab-whatif-changed/.test(
      (await lab(page).locator('.govlab-whatif tr[data-role="clinician"]').getAttribute('class')) ??
        '',
    ),
  };
  await screenshot(page, 'governance-whatif');
  await lab(page).locator('button.govlab-policy-save').click({ timeout: STEP_MS });
  await lab(page)
    .locator('.govlab-policy-status', { hasText: 'Saved as revision' })
    .waitFor({ timeout: STEP_MS });
  result.afterSave = await text(lab(page).locator('.govlab-policy-shipped'));
  await lab(page).locator('button.govlab-policy-reset').click({ timeout: STEP_MS });
  await lab(page)
    .locator('.govlab-policy-status', { hasText: 'Reset to the shipped policy' })
    .waitFor({ timeout: STEP_MS });
  await until('the editor to hold the shipped text', async () => (await area.inputValue()) === shipped);
  result.afterReset = await text(lab(page).locator('.govlab-policy-shipped'));
  result.restored = true;
  await screenshot(page, 'governance-reset');
  return result;
}

async function hydrateSeed(page) {
  const t1 = Date.now();
  await lab(page).locator('button.govlab-hydrate-start').click({ timeout: STEP_MS });
  await page.waitForFunction(
    () => {
      const s = document.querySelector('.govlab-lab .govlab-hydrate-status');
      const bar = document.querySelector('.govlab-lab .govlab-hydrate-progress .widget-label');
      const done = s && /^(completed|failed|cancelled)/.test(s.textContent.trim());
      return done && (!s.textContent.startsWith('completed') || bar?.textContent === '100%');
    },
    null,
    { timeout: SEED_MS },
  );
  const status = await text(lab(page).locator('.govlab-hydrate-status'));
  const bar = await text(lab(page).locator('.govlab-hydrate-progress .widget-label'));
  if (!status.startsWith('completed')) throw new Error(`seeding did not complete: ${status}`);
  return { status, bar, ms: Date.now() - t1 };
}

/** The first stages, as a learner: dataset, size, format (with the item-7 checks). */
async function chooseTable(page) {
  summary.checks.before = {
    formatDone: await stageDone(page, 'format'),
    roleDone: await stageDone(page, 'role'),
    datasetAbout: await lab(page).locator('.govlab-dataset-about li[data-option]').count(),
  };
  await chooseToggle(page, 'govlab-dataset', 'healthcare');
  await screenshot(page, 'dataset');
  await next(page, 'size');
  await chooseToggle(page, 'govlab-size', 'tiny (1,000 rows)');
  summary.checks.sizeCutOff = await cutOffLabels(page, '.govlab-size button.widget-toggle-button');
  summary.checks.sizeContrast = await toggleContrast(page, 'govlab-size');
  summary.checks.formatDoneAtSize = await stageDone(page, 'format');
  await screenshot(page, 'size');
  await next(page, 'format');
  await chooseToggle(page, 'govlab-format', FORMAT_LABELS[FORMAT]);
  summary.checks.formatAbout = await text(lab(page).locator('.govlab-format-about li.govlab-chosen'));
  await screenshot(page, 'format');
  await next(page, 'governance');
  await lab(page).locator('.govlab-policy-status .govlab-policy-ok').waitFor({ timeout: STEP_MS });
  await lab(page)
    .locator('.govlab-governance-preview tr[data-role="business_user"]')
    .waitFor({ timeout: STEP_MS });
}

async function readGovernance(page) {
  return {
    mode: await text(lab(page).locator('.govlab-policy-mode')),
    status: await text(lab(page).locator('.govlab-policy-status')),
    previewRoles: await lab(page)
      .locator('.govlab-governance-preview tr[data-role]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-role'))),
    descriptions: await lab(page)
      .locator('.govlab-governance-preview .govlab-role-description')
      .allInnerTexts(),
    legendMasks: await lab(page).locator('.govlab-mask-legend tr[data-mask]').count(),
    textareaInside: await textareaInside(page),
    roleDone: await stageDone(page, 'role'),
  };
}

async function roleStage(page, role) {
  const picked = await pickRole(page, role);
  picked.description = await text(lab(page).locator('.govlab-role-about'));
  await screenshot(page, `role-${role}`);
  return picked;
}

async function validateStage(page, role, shotName) {
  const result = await validated(page, role);
  result.badge = await text(lab(page).locator('.govlab-acting'));
  await screenshot(page, shotName ?? `validate-${role}`);
  return result;
}

/** A name the first role sees raw that the second role holds only masked: nothing found. */
async function searchMaskedOnly(page, name) {
  const before = await searchSnapshot(page);
  const input = lab(page).locator('.govlab-search-q input');
  await input.fill(name);
  await input.press('Enter');
  await waitSearchChange(page, before);
  await lab(page).locator('.govlab-search-explain .govlab-explain').waitFor({ timeout: STEP_MS });
  const result = {
    name,
    total: (await readSearch(page)).total,
    explain: await text(lab(page).locator('.govlab-search-explain')),
  };
  await screenshot(page, 'search-explain');
  return result;
}

async function walk(page) {
  await chooseTable(page);
  summary.governance = await readGovernance(page);
  await screenshot(page, 'governance');
  if (opts.whatif) summary.whatif = await policyWhatIf(page);

  const first = opts['first-role'];
  const second = opts['second-role'];
  summary.roles[first] = {};
  summary.roles[second] = {};
  await next(page, 'role');
  summary.roles[first].role = await roleStage(page, first);
  await next(page, 'validate');
  summary.validate[first] = await validateStage(page, first);
  await next(page, 'hydrate');
  summary.hydrateBefore = {
    table: await text(lab(page).locator('.govlab-hydrate-table')),
    existingDisabled: await lab(page).locator('button.govlab-hydrate-existing').isDisabled(),
    nextDisabled: await lab(page).locator('button.govlab-next').isDisabled(),
  };
  await screenshot(page, 'hydrate-before');
  summary.hydrate = await hydrateSeed(page);
  await screenshot(page, 'hydrate');

  // Back to Validate: it must count the table the seed just wrote (bug 1).
  await back(page, 'validate');
  await page.waitForFunction(
    () => /of 1,000 rows/.test(document.querySelector('.govlab-validate-rows')?.textContent ?? ''),
    null,
    { timeout: STEP_MS },
  );
  summary.validate.afterSeed = await validateStage(page, first, `validate-${first}-after-seed`);
  await waitCompare(page, 'validate', [first]);
  summary.compareValidate = await readCompare(page, 'validate');
  await next(page, 'hydrate');

  const beforeFirst = await searchSnapshot(page); // null: no search view on the page yet
  await next(page, 'search');
  const snap = await searchAsRole(page, first, summary.roles[first], beforeFirst);
  summary.roles[first].took = await text(lab(page).locator('.govlab-took'));
  summary.roles[first].legend = await text(lab(page).locator('.govlab-cache-legend'));
  summary.roles[first].badge = await text(lab(page).locator('.govlab-acting'));
  await waitCompare(page, 'search', [first]);
  summary.compareSearch = await readCompare(page, 'search');
  await screenshot(page, `search-compare-${first}`);
  // The stepper alone (no notebook text around it): the README's picture of this stage.
  await elementShot(page, lab(page), path.join(ARTIFACTS, 'stepper-search-compare.png'));

  // Switch role: Back to the role stage, pick the second role, forward to search.
  await back(page, 'hydrate');
  await back(page, 'validate');
  await back(page, 'role');
  summary.roles[second].role = await roleStage(page, second);
  await next(page, 'validate');
  summary.validate[second] = await validateStage(page, second);
  await next(page, 'hydrate');
  // The table of this format was seeded above: Hydrate stays complete for a new role.
  summary.hydrate.statusAfterRoleSwitch = await text(lab(page).locator('.govlab-hydrate-status'));
  summary.hydrate.tableAfterRoleSwitch = await text(lab(page).locator('.govlab-hydrate-table'));
  await screenshot(page, `hydrate-${second}`);
  await next(page, 'search');
  await searchAsRole(page, second, summary.roles[second], snap);

  // A name the first role saw raw in the compared record; masked for the second role.
  const name = summary.compareSearch.cells.find(
    (c) => c.column === 'name' && c.role === first && c.kind === 'raw',
  )?.text;
  if (!name) throw new Error(`no raw name of ${first} in the compared record`);
  summary.explain = await searchMaskedOnly(page, name.split(' ')[0]);
}

// ---------------------------------------------------------------------- lifecycle

/** Wait (bounded) for the harness to create `file`. */
async function waitForFile(file, timeout) {
  await until(`the harness to create ${file}`, async () => fs.existsSync(file), timeout, 200);
}

async function waitReady(page, timeout = RENDER_MS) {
  await page.waitForFunction(
    () => document.querySelector('.govlab-server-status')?.getAttribute('data-phase') === 'ready',
    null,
    { timeout },
  );
  return Number(
    (await lab(page).locator('.govlab-server-status').getAttribute('data-pid')) ?? 'NaN',
  );
}

async function lifecycle(context, page) {
  summary.lifecycle = {};
  const serverPid = await waitReady(page);
  summary.lifecycle.page1 = { banner: await bannerSeen(page), serverPid };
  await screenshot(page, 'lifecycle-ready');
  await chooseTable(page);
  await next(page, 'role');
  await roleStage(page, 'clinician');
  await next(page, 'validate');
  await validated(page, 'clinician');
  await next(page, 'hydrate');
  summary.hydrate = await hydrateSeed(page);
  const before = await searchSnapshot(page);
  await next(page, 'search');
  await waitSearchChange(page, before);
  summary.lifecycle.beforeOutage = await readSearch(page);

  // The harness stops the API this kernel started; the next search must say so.
  process.stdout.write(`${JSON.stringify({ event: 'outage', serverPid })}\n`);
  await waitForFile(path.join(ARTIFACTS, 'outage.done'), OUTAGE_MS);
  await lab(page).locator('button.govlab-search-go').click({ timeout: STEP_MS });
  await lab(page).locator('.govlab-search-error .govlab-error').waitFor({ timeout: STEP_MS });
  summary.lifecycle.afterOutage = {
    ...(await readSearch(page)),
    nextDisabled: await lab(page).locator('button.govlab-page-next').isDisabled(),
    prevDisabled: await lab(page).locator('button.govlab-page-prev').isDisabled(),
  };
  await screenshot(page, 'lifecycle-outage');
  await page.close({ runBeforeUnload: true });

  // A second page: a new kernel, which starts a new API and shows its start-up.
  const second = await context.newPage();
  await watchBanner(second);
  await second.goto(opts.url, { timeout: RENDER_MS, waitUntil: 'domcontentloaded' });
  await lab(second).waitFor({ timeout: RENDER_MS });
  const pid2 = await waitReady(second);
  summary.lifecycle.page2 = { banner: await bannerSeen(second), serverPid: pid2 };
  await screenshot(second, 'lifecycle-page2');
  process.stdout.write(`${JSON.stringify({ event: 'page2', serverPid: pid2 })}\n`);
  await second.close({ runBeforeUnload: true });
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) {
    if (f.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, f));
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'govlab-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  });
  let page;
  try {
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') summary.consoleErrors.push(m.text().slice(0, 300));
    });
    page.on('pageerror', (e) => summary.pageErrors.push(String(e).slice(0, 300)));
    await watchBanner(page);

    const t0 = Date.now();
    await page.goto(opts.url, { timeout: RENDER_MS, waitUntil: 'domcontentloaded' });
    await lab(page).waitFor({ timeout: RENDER_MS });
    await waitStage(page, 'dataset', RENDER_MS);
    summary.timings.renderMs = Date.now() - t0;

    if (opts.scenario === 'lifecycle') await lifecycle(context, page);
    else await walk(page);

    summary.timings.totalMs = Date.now() - started;
    summary.ok = true;
  } catch (err) {
    summary.error = String(err?.stack ?? err).slice(0, 2000);
    if (page && !page.isClosed()) {
      try {
        await screenshot(page, 'failure');
        summary.failureHtml = (await lab(page).innerHTML({ timeout: 2000 })).slice(0, 20000);
      } catch {
        // the page itself is gone; the error says why
      }
    }
  } finally {
    for (const p of context.pages()) {
      // On beforeunload Voila asks its server to shut the page's kernel down (it carries
      // the _xsrf cookie govlab.lab.voila makes the page set).
      await p.close({ runBeforeUnload: true }).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 500));
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exitCode = summary.ok ? 0 : 1;
}

await main();
