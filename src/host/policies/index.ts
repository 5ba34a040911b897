/**
 * The policy table: every auto-balloon policy by name (one file each). A new policy is
 * one file with a definePolicy and one line here.
 */
import type { PolicyDef } from './policy.js';
import { nonePolicy } from './none.js';
import { reportingPolicy } from './reporting.js';
import { momPolicy } from './mom.js';
import { proxmoxPolicy } from './proxmox.js';
import { chromeosLimitCachePolicy } from './chromeos_limit_cache.js';
import { chromeosBalanceAvailablePolicy } from './chromeos_balance_available.js';

export type { PolicyDef, PolicyInstance, PolicyVm, PolicyHost, PolicyDecision } from './policy.js';

// NOTE: the options are checked by the scenario schema (scenario/host_schema.ts); the
// table holds each definition under its name with its options' type erased.
export const POLICIES: ReadonlyArray<PolicyDef<Record<string, unknown>>> = [
  nonePolicy, reportingPolicy, momPolicy, proxmoxPolicy, chromeosLimitCachePolicy, chromeosBalanceAvailablePolicy,
] as unknown as ReadonlyArray<PolicyDef<Record<string, unknown>>>;

export const POLICY_NAMES: readonly string[] = POLICIES.map((p) => p.name);

export function policyDef(name: string): PolicyDef<Record<string, unknown>> | undefined {
  return POLICIES.find((p) => p.name === name);
}
