/**
 * A smart-search `CacheProvider` that is safe to share between principals.
 *
 * smart-search keys a cached search by `search:` + query, filters, sort, limit and offset,
 * nothing else: two SmartSearch instances (say a clinician's and a business user's) that
 * share one cache serve each other their pages, masked for someone else. And nothing in
 * that key changes when govlab reseeds the table or a policy edit changes the masks.
 *
 * `PrincipalScopedCache` wraps the shared cache for one provider (one token, one
 * principal) and files every entry under
 *
 *     govlab:<scope>:t<tableVersion>:p<policyVersion>:<smart-search's key>
 *
 * - `scope` is a SHA-256 fingerprint of the principal (the token's `sub`, `role` and
 *   `attrs`) and of what shapes a result (server URL, dataset, format, column map, result
 *   type, exactTotal). A token that is not a readable JWT is never cached.
 * - Before every lookup the wrapper asks the server for the versions this principal
 *   searches now (`provider.currentVersions()`, a one-row search). That request carries
 *   the token, so the server verifies it each time: a forged token that copies another
 *   principal's claims, or an expired one, gets a 401 and no cache entry. A page stored
 *   under older versions is never read again. `revalidateMs` can reuse a check for a
 *   while (fewer requests, stale for at most that long; never past the token's `exp`).
 * - A page is stored under the versions it was read at (its results' metadata), not the
 *   versions of the last check; a page without results carries none and is not stored.
 *
 * The shared cache's own `search()` is never used (it would search everyone's entries).
 */

import { createHash } from 'node:crypto';

import type { CacheProvider, HealthStatus, SearchOptions, SearchResult } from 'smart-search-types';

import type { DeltaApiProvider } from './delta-api-provider.ts';

export const KEY_PREFIX = 'govlab:';

/** JSON with object keys sorted at every level: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The scope of a provider's cache entries, or null when its token has no readable claims. */
export function principalFingerprint(provider: DeltaApiProvider): string | null {
  if (!provider.claims) return null;
  const { sub, role, attrs } = provider.claims;
  const scope = {
    v: 1,
    principal: { sub, role, attrs },
    url: provider.url,
    dataset: provider.dataset,
    format: provider.format,
    columns: provider.columns,
    resultType: provider.resultType,
    exactTotal: provider.exactTotal,
  };
  return createHash('sha256').update(canonicalJson(scope)).digest('hex').slice(0, 32);
}

interface Versions {
  tableVersion: number;
  policyVersion: string;
}

/** The one version pair all results of a page were read at, for this role; else null. */
function versionsOf(value: unknown, role: string): Versions | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  let found: Versions | null = null;
  for (const result of value as SearchResult[]) {
    const meta = result?.metadata;
    if (!meta || meta.role !== role) return null;
    const { tableVersion, policyVersion } = meta as Partial<Versions>;
    if (typeof tableVersion !== 'number' || typeof policyVersion !== 'string') return null;
    if (found && (found.tableVersion !== tableVersion || found.policyVersion !== policyVersion)) {
      return null;
    }
    found = { tableVersion, policyVersion };
  }
  return found;
}

export interface PrincipalScopedCacheOptions {
  /** How long (ms) one version check may be reused: 0 (default) checks on every lookup,
   * so a reseed or policy edit is never served stale. */
  revalidateMs?: number;
}

export class PrincipalScopedCache implements CacheProvider {
  readonly name: string;
  /** Null when the token has no readable claims: then nothing is read or stored. */
  readonly scope: string | null;
  private readonly revalidateMs: number;
  private checked: (Versions & { at: number }) | null = null;

  constructor(
    private readonly shared: CacheProvider,
    private readonly provider: DeltaApiProvider,
    options: PrincipalScopedCacheOptions = {},
  ) {
    this.name = `principal-scoped(${shared.name})`;
    this.scope = principalFingerprint(provider);
    this.revalidateMs = Math.max(0, options.revalidateMs ?? 0);
  }

  connect(): Promise<void> {
    return this.shared.connect();
  }

  disconnect(): Promise<void> {
    return this.shared.disconnect();
  }

  isConnected(): Promise<boolean> {
    return this.shared.isConnected();
  }

  checkHealth(): Promise<HealthStatus> {
    return this.shared.checkHealth();
  }

  /** Refused: the shared cache holds every principal's entries. */
  async search(_query: string, _options: SearchOptions): Promise<SearchResult[]> {
    throw new Error(
      `${this.name}: searching the shared cache is refused (it holds every principal's pages)`,
    );
  }

  async get(key: string): Promise<unknown> {
    const prefix = await this.currentPrefix();
    if (!prefix) return null;
    const value = (await this.shared.get(prefix + key)) as unknown;
    if (!Array.isArray(value)) return null;
    // Marked, so a caller can tell a client-cache hit from the server's own cache status.
    return (value as SearchResult[]).map((result) => ({
      ...result,
      metadata: { ...result.metadata, clientCache: 'hit' },
    }));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    const role = this.provider.claims?.role;
    const versions = role === undefined ? null : versionsOf(value, role);
    if (!this.scope || !versions) return;
    await this.shared.set(this.prefix(versions) + key, value, ttl);
  }

  async delete(key: string): Promise<void> {
    const prefix = await this.currentPrefix();
    if (prefix) await this.shared.delete(prefix + key);
  }

  /** Clears this principal's entries only (of every version); `pattern` is a glob on
   * smart-search's own keys, passed on to the shared cache's `clear`. */
  async clear(pattern?: string): Promise<void> {
    if (!this.scope) return;
    await this.shared.clear(`${KEY_PREFIX}${this.scope}:t*:p*:${pattern ?? '*'}`);
  }

  private prefix(versions: Versions): string {
    return `${KEY_PREFIX}${this.scope}:t${versions.tableVersion}:p${versions.policyVersion}:`;
  }

  /** The key prefix for what this principal may read now, or null: no scope, or the server
   * did not confirm this token and its versions (then the lookup is a miss). */
  private async currentPrefix(): Promise<string | null> {
    const claims = this.provider.claims;
    if (!this.scope || !claims) return null;
    const now = Date.now();
    const expired = claims.exp !== undefined && now >= claims.exp * 1000;
    if (this.checked && !expired && now - this.checked.at < this.revalidateMs) {
      return this.prefix(this.checked);
    }
    this.checked = null;
    try {
      const current = await this.provider.currentVersions();
      if (current.role !== claims.role) return null; // the claims do not describe this token
      this.checked = { ...current, at: now };
      return this.prefix(current);
    } catch {
      return null; // the search itself will meet (and report) the same error
    }
  }
}

/** A minimal in-process smart-search CacheProvider (a bounded map with TTLs), e.g. to be
 * shared between principals through PrincipalScopedCache. Values are copied in and out,
 * so a caller that changes a result cannot change the cached page. */
export class MemoryCache implements CacheProvider {
  readonly name = 'memory';
  private readonly entries = new Map<string, { value: unknown; expires: number }>();

  constructor(private readonly maxEntries = 1_000) {}

  async connect(): Promise<void> {}

  async disconnect(): Promise<void> {}

  async isConnected(): Promise<boolean> {
    return true;
  }

  /** A key-value store indexes nothing to search. */
  async search(_query: string, _options: SearchOptions): Promise<SearchResult[]> {
    return [];
  }

  /** `ttl` in milliseconds, as SmartSearch passes it (cacheConfig.defaultTTL, 300000). */
  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    this.entries.delete(key); // re-inserted last: the map's order is the eviction order
    this.entries.set(key, {
      value: structuredClone(value),
      expires: ttl && ttl > 0 ? Date.now() + ttl : Number.POSITIVE_INFINITY,
    });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  async get(key: string): Promise<unknown> {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (Date.now() >= entry.expires) {
      this.entries.delete(key);
      return null;
    }
    return structuredClone(entry.value);
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  /** `pattern`: a glob where `*` matches any run of characters; none clears everything. */
  async clear(pattern?: string): Promise<void> {
    if (pattern === undefined) {
      this.entries.clear();
      return;
    }
    const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
    const matcher = new RegExp(`^${escaped.join('.*')}$`, 's');
    for (const key of [...this.entries.keys()]) {
      if (matcher.test(key)) this.entries.delete(key);
    }
  }

  /** The stored keys (to inspect what is cached). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  async checkHealth(): Promise<HealthStatus> {
    return {
      status: 'healthy',
      isConnected: true,
      isSearchAvailable: true,
      latency: 0,
      keyCount: this.entries.size,
      errors: [],
    };
  }
}
