/**
 * Pearson's chi-square goodness-of-fit test for the speculative sampling tests: observed counts of
 * tokens against expected probabilities. Tokens expected fewer than `minExpected` times are pooled
 * into one bin (the test's approximation needs about five expected per bin).
 */
export interface ChiSquare {
  readonly statistic: number;
  readonly degreesOfFreedom: number;
  /** P(X ≥ statistic) for X ~ chi-square(degreesOfFreedom). */
  readonly pValue: number;
  readonly bins: number;
}

export function chiSquare(
  counts: ReadonlyMap<number, number>,
  probabilities: ArrayLike<number>,
  samples: number,
  minExpected = 5,
): ChiSquare {
  let statistic = 0;
  let bins = 0;
  let pooledExpected = 0;
  let pooledObserved = 0;
  for (let t = 0; t < probabilities.length; t++) {
    const expected = samples * (probabilities[t] as number);
    const observed = counts.get(t) ?? 0;
    if (expected < minExpected) {
      pooledExpected += expected;
      pooledObserved += observed;
      continue;
    }
    statistic += (observed - expected) ** 2 / expected;
    bins++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins++;
  }
  const degreesOfFreedom = bins - 1;
  return { statistic, degreesOfFreedom, pValue: upperGammaQ(degreesOfFreedom / 2, statistic / 2), bins };
}

/** Q(a, x) = Γ(a, x) / Γ(a), the regularised upper incomplete gamma function (series / continued fraction). */
export function upperGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnPrefix = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // Series for P(a, x).
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(lnPrefix);
  }
  // Lentz's continued fraction for Q(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(lnPrefix) * h;
}

/** ln Γ(z) (Lanczos, g = 7). */
function logGamma(z: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let x = c[0]!;
  for (let i = 1; i < g + 2; i++) x += c[i]! / (z + i);
  const t = z + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Softmax of logits at a temperature, in float64. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(((logits[i] as number) - max) / temperature);
    sum += out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}
