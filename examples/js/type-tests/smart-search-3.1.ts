/**
 * Type-level assertions against the installed `@bilgrami/smart-search` 3.1, checked by
 * `npm run typecheck:smart-search` (tsconfig.smart-search.json) where the package is
 * installed; the vitest suite runs that check (smart-search.test.ts).
 *
 * 1. The fallback declarations in smart-search-types.ts are identical to the package's
 *    types, both ways (not merely assignable), so neither can drift silently.
 * 2. The provider, the principal-scoped cache and the bridge's view of SmartSearch fit
 *    the real package's interfaces.
 * 3. The check can fail: smart-search 1.0's HealthStatus, which this example once
 *    declared, is refused (an unused `@ts-expect-error` would be an error).
 */
import type * as Real from '@bilgrami/smart-search';

import type { DeltaApiProvider } from '../delta-api-provider.ts';
import type { MemoryCache, PrincipalScopedCache } from '../principal-cache.ts';
import type { SmartSearchConstructor } from '../smart-search-bridge.ts';
import type * as Declared from '../smart-search-types.ts';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type Fits<A, B> = A extends B ? true : false;

export type DeclaredIsThePackage = [
  Assert<Equal<Declared.SearchResult, Real.SearchResult>>,
  Assert<Equal<Declared.SearchFilters, Real.SearchFilters>>,
  Assert<Equal<Declared.SearchOptions, Real.SearchOptions>>,
  Assert<Equal<Declared.SearchStrategy, Real.SearchStrategy>>,
  Assert<Equal<Declared.SearchPerformance, Real.SearchPerformance>>,
  Assert<Equal<Declared.CircuitBreakerState, Real.CircuitBreakerState>>,
  Assert<Equal<Declared.HealthStatus, Real.HealthStatus>>,
  Assert<Equal<Declared.DatabaseProvider, Real.DatabaseProvider>>,
  Assert<Equal<Declared.CacheProvider, Real.CacheProvider>>,
  Assert<Equal<Declared.SmartSearchConfig, Real.SmartSearchConfig>>,
];

export type ExampleFitsThePackage = [
  Assert<Fits<DeltaApiProvider, Real.DatabaseProvider>>,
  Assert<Fits<PrincipalScopedCache, Real.CacheProvider>>,
  Assert<Fits<MemoryCache, Real.CacheProvider>>,
  Assert<Fits<typeof Real.SmartSearch, SmartSearchConstructor>>,
];

/** smart-search 1.0's HealthStatus (every field required, no `status`). */
interface HealthStatus10 {
  isConnected: boolean;
  isSearchAvailable: boolean;
  latency: number;
  memoryUsage: string;
  keyCount: number;
  lastSync: string | null;
  errors: string[];
}
// @ts-expect-error 1.0's HealthStatus is not 3.1's: the equality check above can fail
export type OldHealthIsRefused = Assert<Equal<HealthStatus10, Real.HealthStatus>>;

/** 3.1's result types, which 1.0's union lacked (upstream's Delta showcase uses this one). */
export const healthcareResult: Real.SearchResult['type'] = 'healthcare_data';
