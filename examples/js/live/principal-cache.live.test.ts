/**
 * PrincipalScopedCache inside the real smart-search, against a live govlab API: two
 * principals' SmartSearch instances share one cache and never see each other's pages, and
 * neither a policy edit nor a reseed is served stale. Run by tests/test_examples.py, which
 * starts `govlab serve` and passes GOVLAB_LIVE_URL and GOVLAB_LIVE_TOKENS.
 */
import { describe, expect, it } from 'vitest';

import { DeltaApiProvider } from '../delta-api-provider.ts';
import { MemoryCache } from '../principal-cache.ts';
import { loadSmartSearch, smartSearchConfig, smartSearchPage } from '../smart-search-bridge.ts';

const URL_ = process.env.GOVLAB_LIVE_URL ?? '';
const TOKENS = JSON.parse(process.env.GOVLAB_LIVE_TOKENS ?? '{}') as Record<
  'clinician' | 'business' | 'admin',
  string
>;
const SEED_TIMEOUT_MS = 120_000;

async function api(path: string, init: RequestInit = {}): Promise<any> {
  const response = await fetch(`${URL_}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${TOKENS.admin}`, ...init.headers },
    signal: AbortSignal.timeout(30_000),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

async function putPolicy(yaml: string): Promise<string> {
  const body = await api('/policies/healthcare', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/yaml' },
    body: yaml,
  });
  return body.policyVersion as string;
}

/** Reseeds the table through the API and waits (bounded) for the job to finish. */
async function reseed(): Promise<void> {
  const { jobId } = await api('/seed', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ dataset: 'healthcare', size: 'tiny', format: 'delta' }),
  });
  const deadline = Date.now() + SEED_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const progress = await api(`/progress?jobId=${encodeURIComponent(jobId)}`);
    if (progress.status === 'completed') return;
    if (progress.status === 'failed' || progress.status === 'cancelled') {
      throw new Error(`seed ${jobId}: ${JSON.stringify(progress)}`);
    }
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`seed ${jobId} did not finish within ${SEED_TIMEOUT_MS} ms`);
}

describe.runIf(URL_)('PrincipalScopedCache against a live govlab', () => {
  it('keeps two principals apart, and serves nothing from before a policy edit or reseed', async () => {
    const library = await loadSmartSearch();
    expect(library, '@bilgrami/smart-search is not installed').not.toBeNull();
    const shared = new MemoryCache();
    const clinician = new DeltaApiProvider({ url: URL_, token: TOKENS.clinician });
    const business = new DeltaApiProvider({ url: URL_, token: TOKENS.business });
    const sc = new library!.SmartSearch(smartSearchConfig(clinician, { sharedCache: shared }));
    const sb = new library!.SmartSearch(smartSearchConfig(business, { sharedCache: shared }));
    const asClinician = () => smartSearchPage(sc, clinician, 'asthma', { limit: 5 });
    const asBusiness = () => smartSearchPage(sb, business, '', { limit: 5 });
    const ids = (page: { results: { id: string }[] }) => page.results.map((r) => r.id);

    const c1 = await asClinician();
    const b1 = await asBusiness();
    expect([c1.source, b1.source]).toEqual(['server', 'server']);
    expect(c1.page.role).toBe('clinician');
    expect(b1.page.role).toBe('business_user');
    expect(c1.results.length).toBeGreaterThan(0);
    expect(c1.results.every((r) => r.title !== '*****')).toBe(true); // names, unmasked
    expect(b1.results.every((r) => r.title === '*****')).toBe(true); // names, masked

    const [c2, b2] = [await asClinician(), await asBusiness()];
    expect([c2.source, b2.source]).toEqual(['client-cache', 'client-cache']);
    expect(ids(c2)).toEqual(ids(c1));
    expect(c2.results.map((r) => r.title)).toEqual(c1.results.map((r) => r.title));
    expect(b2.results.every((r) => r.title === '*****')).toBe(true);

    // A policy edit: business_user also gets `condition` masked.
    const original = (await api('/policies/healthcare')).yaml as string;
    const edited = original.replace(
      /(- id: business_user[\s\S]*?column_masks: \{)/,
      '$1condition: redact_full, ',
    );
    expect(edited).not.toBe(original);
    const editedVersion = await putPolicy(edited);
    try {
      const b3 = await asBusiness();
      expect(b3.source).toBe('server');
      expect(b3.page.policyVersion).toBe(editedVersion);
      expect(b3.page.policyVersion).not.toBe(b1.page.policyVersion);
      expect(b3.page.maskedFields).toContain('condition');
      expect(b3.results.every((r) => r.subtitle === '*****')).toBe(true);
    } finally {
      await putPolicy(original);
    }

    // A reseed: a new table version; the clinician's cached page is not served.
    await reseed();
    const c3 = await asClinician();
    expect(c3.source).toBe('server');
    expect(c3.page.tableVersion).toBeGreaterThan(c1.page.tableVersion);
    expect((await asClinician()).source).toBe('client-cache');
  });
});
