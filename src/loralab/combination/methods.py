"""The method table: every registered combination method with its formula and source."""

from __future__ import annotations

from loralab.combination import arrow, learned, merges, routers
from loralab.combination.registry import MethodSpec

TIES_PAPER = "Yadav et al. 2023, TIES-Merging: Resolving Interference When Merging Models"
DARE_PAPER = "Yu et al. 2024, Language Models are Super Mario (DARE)"

# fmt: off
SPECS: tuple[MethodSpec, ...] = (
    MethodSpec(
        "uniform", "merge", "delta", "mean of the experts' weight changes (no cross terms)",
        "dW = (1/E) sum_e s_e B_e A_e", "Ostapenko et al. 2024 (uniform averaging over a library)",
        merges.uniform,
    ),
    MethodSpec(
        "linear", "merge", "delta", "weighted sum of the weight changes",
        "dW = sum_e w_e s_e B_e A_e", "-", merges.linear,
    ),
    MethodSpec(
        "cat", "merge", "delta", "concatenated weighted factors: the linear delta, exactly, at rank sum r_e",
        "A = rows[w_e s_e A_e], B = cols[B_e]; dW = B A = sum_e w_e s_e B_e A_e",
        "Prabhakar et al. 2024 (LoRA Soups, CAT); PEFT add_weighted_adapter cat", merges.cat,
    ),
    MethodSpec(
        "task_arithmetic", "merge", "delta", "scaled sum of task vectors",
        "dW = lam sum_e s_e B_e A_e", "Ilharco et al. 2023, Editing Models with Task Arithmetic",
        merges.task_arithmetic,
    ),
    MethodSpec(
        "ties", "merge", "delta", "trim to density, elect sign, disjoint mean, on the weight changes",
        "T_e = top_density(Delta_e); g = sign(sum_e T_e); dW = lam sum_e w_e T_e[sign=g] / #agree",
        TIES_PAPER, merges.ties,
    ),
    MethodSpec(
        "dare_linear", "merge", "delta", "random drop with 1/density rescale, then weighted sum",
        "T_e = m_e * Delta_e / density, m_e ~ Bernoulli(density) (seeded); dW = sum_e w_e T_e",
        DARE_PAPER, merges.dare_linear,
    ),
    MethodSpec(
        "dare_ties", "merge", "delta", "DARE's drop and rescale, then TIES's election and disjoint mean",
        "T_e = m_e * Delta_e / density; g = sign(sum_e T_e); dW = lam sum_e w_e T_e[sign=g] / #agree",
        DARE_PAPER, merges.dare_ties,
    ),
    MethodSpec(
        "magnitude_prune", "merge", "delta", "keep each delta's largest entries, then weighted sum",
        "dW = sum_e w_e top_density(Delta_e)", "PEFT add_weighted_adapter magnitude_prune (delta space here)",
        merges.magnitude_prune,
    ),
    MethodSpec(
        "uniform_factor", "merge", "factor", "mean of the A's times mean of the B's (mttl's Uniform)",
        "dW = (1/E sum_e B_e)(1/E sum_e s_e A_e)  (cross terms B_i A_j)",
        "Ostapenko et al. 2024 / mttl default", merges.uniform_factor,
    ),
    MethodSpec(
        "linear_factor", "merge", "factor", "PEFT's `linear`: square-root weights on each factor",
        "c_e = w_e s_e; dW = (sum_e sqrt|c_e| B_e)(sum_e sign(c_e) sqrt|c_e| A_e)  (cross terms)",
        "PEFT add_weighted_adapter linear", merges.linear_factor,
    ),
    MethodSpec(
        "ties_factor", "merge", "factor", "PEFT's `ties`: TIES on raw A entries and on raw B entries",
        "A = TIES_e(A_e; sign(c_e) sqrt|c_e|), B = TIES_e(B_e; sqrt|c_e|); dW = B A",
        "PEFT add_weighted_adapter ties", merges.ties_factor,
    ),
    MethodSpec(
        "arrow", "router", "routed", "per-token routing to experts whose top singular direction lines up",
        "p_e = top right singular vector of B_e A_e; c = softmax(top_k(|x.p_e|) / T); "
        "mix=output: y = W x + sum_e c_e s_e B_e A_e x; mix=params: y = W x + (sum c_e B_e)(sum c_e s_e A_e) x",
        "Ostapenko et al. 2024, Towards Modular LLMs by Building and Reusing a Library of LoRAs",
        arrow.install_arrow,
    ),
    MethodSpec(
        "uniform_route", "router", "routed", "mu-routing: every expert at 1/E in every layer and token",
        "mix=output: y = W x + (1/E) sum_e s_e B_e A_e x; mix=params: (mean_e B_e)(mean_e s_e A_e) x",
        "Ostapenko et al. 2024 (mu-routing)", routers.uniform_route,
    ),
    MethodSpec(
        "cat_learned", "learned", "delta", "CAT with per-layer, per-expert weights fitted on target data",
        "dW_l = sum_e w_{l,e} s_e B_e A_e, w fitted by gradient descent (base and experts frozen)",
        "Prabhakar et al. 2024, LoRA Soups", learned.cat_learned,
    ),
    MethodSpec(
        "lorahub", "learned", "factor", "gradient-free search for one weight per expert (nevergrad NGOpt)",
        "w in [-1.5, 1.5]^E from 0, min few-shot loss + 0.05 mean|w|; dW = (sum w_e B_e)(sum w_e s_e A_e)",
        "Huang et al. 2024, LoraHub", learned.lorahub,
    ),
    MethodSpec(
        "oracle", "baseline", "-", "one named expert alone (comparison row)",
        "dW = s_k B_k A_k", "-", routers.oracle,
    ),
    MethodSpec("base", "baseline", "-", "the base model, no adapter (comparison row)", "dW = 0", "-", routers.base),
)
# fmt: on
