// The prescribing rules the form checks as the prescriber types, from the policy table the server
// publishes (`/console/api/policy`): no copy of a limit lives in the script.
export const KINDS = ["c", "n", "h", "y", "t"];

export function ageInMonths(born, on) {
  let months = (on.y - born.y) * 12 + (on.m - born.m);
  if (on.d < born.d) months -= 1;
  return months;
}

// 3,5 or 3.5 kg: Vietnamese write decimals with a comma.
export function parseWeight(text) {
  const cleaned = text.trim().replace(",", ".");
  return /^\d{1,3}(\.\d{1,2})?$/.test(cleaned) ? Number(cleaned) : null;
}

export function rulesOf(policy) {
  const chronic = new Set(policy.chronic_icd10);

  function isChronic(code) {
    const upper = code.toUpperCase();
    return chronic.has(upper) || chronic.has(upper.slice(0, 3));
  }

  function isCancerOrAids(code) {
    const upper = code.toUpperCase();
    return (
      policy.cancer_icd10_prefixes.some((prefix) => upper.startsWith(prefix)) ||
      policy.hiv_icd10_blocks.includes(upper.slice(0, 3))
    );
  }

  function kindOf(line) {
    if (line.drug.category === "traditional" && line.decoction) return "t";
    return policy.kind_of_category[line.drug.category];
  }

  // The most days of supply a line of this kind may carry with these diagnoses, and why.
  function daysLimit(kind, diagnoses) {
    const chronicDx = diagnoses.some((d) => isChronic(d.icd10));
    const cancerOrAids = diagnoses.some((d) => isCancerOrAids(d.icd10));
    if (kind === "n") {
      return cancerOrAids
        ? { limit: policy.narcotic_max_days_per_round, why: "limit.narcotic_round" }
        : { limit: policy.narcotic_max_days_acute, why: "limit.narcotic_acute" };
    }
    if (kind === "h") {
      return chronicDx
        ? { limit: policy.psychotropic_max_days_long_term, why: "limit.psychotropic_long" }
        : { limit: policy.psychotropic_max_days_acute, why: "limit.psychotropic_acute" };
    }
    return chronicDx
      ? { limit: policy.max_days_supply_chronic, why: "limit.chronic" }
      : { limit: policy.max_days_supply, why: "limit.normal" };
  }

  // One prescription per kind: [kind, line indices], kinds in the policy's order.
  function groupsOf(lines) {
    const byKind = new Map();
    lines.forEach((line, index) => {
      const kind = kindOf(line);
      if (!byKind.has(kind)) byKind.set(kind, []);
      byKind.get(kind).push(index);
    });
    return KINDS.filter((kind) => byKind.has(kind)).map((kind) => [kind, byKind.get(kind)]);
  }

  return { isChronic, kindOf, daysLimit, groupsOf };
}
