"""Named formulas for science fits (`synthetic:formula/<name>`), inputs uniform on their ranges.

| name | f | inputs |
|---|---|---|
| `kan-hello` | exp(sin(πx) + y²) (KAN paper, §3.1) | x, y in [-1, 1] |
| `kan-j0` | J0(20x) | x in [-1, 1] |
| `kan-xy` | x·y | x, y in [-1, 1] |
| `kan-4d` | exp(½(sin(π(x1²+x2²)) + sin(π(x3²+x4²)))) | x1..x4 in [-1, 1] |
| `kan-100d` | exp(1/100 Σ sin²(πx_i/2)) | x1..x100 in [-1, 1] |
| `ellipj` | sn(x \\| y), scipy.special.ellipj(x, y)[0] | x in [-1, 1], y in [0, 1] |
| `ellipkinc` | F(x \\| y), incomplete elliptic integral of the 1st kind | x in [-1, 1], y in [0, 1] |
| `ellipeinc` | E(x \\| y), incomplete elliptic integral of the 2nd kind | x in [-1, 1], y in [0, 1] |
| `ellipk` | K(x), complete elliptic integral of the 1st kind | x in [0, 0.95] |
| `ellipe` | E(x), complete elliptic integral of the 2nd kind | x in [0, 1] |
| `bessel-j0` | J0(x) | x in [0, 20] |
| `bessel-j1` | J1(x) | x in [0, 20] |
| `bessel-y0` | Y0(x) | x in [1, 20] |
| `bessel-jv` | J_x(y), real order x | x in [0, 2], y in [0, 10] |
| `bessel-kv` | K_x(y), modified, 2nd kind | x in [0, 2], y in [0.5, 5] |
| `lpmv-m0`, `lpmv-m1`, `lpmv-m2` | P_x^m(y), associated Legendre, real degree x | x in [0, 4], y in [-0.9, 0.9] |
| `sph-harm-n1m1`, `-n2m1`, `-n2m2` | Re Y_n^m(theta, phi), theta polar, phi azimuth | phi in [0, 2π], theta in [0, π] |

Physics formulas with the AI Feynman benchmark's variables and ranges (Udrescu & Tegmark
2020, FeynmanEquations.csv; ħ = h/2π):

| name | f | inputs |
|---|---|---|
| `feynman-I.6.2` | exp(-(θ/σ)²/2) / (√(2π) σ) | sigma, theta in [1, 3] |
| `feynman-I.6.2b` | exp(-((θ-θ1)/σ)²/2) / (√(2π) σ) | sigma, theta, theta1 in [1, 3] |
| `feynman-I.9.18` | G m1 m2 / ((x2-x1)² + (y2-y1)² + (z2-z1)²) | m1, m2, G, x2, y2, z2 in [1, 2]; x1, y1, z1 in [3, 4] |
| `feynman-I.12.11` | q (Ef + B v sin θ) | q, Ef, B, v, theta in [1, 5] |
| `feynman-I.13.12` | G m1 m2 (1/r2 - 1/r1) | m1, m2, r1, r2, G in [1, 5] |
| `feynman-I.15.3x` | (x - u t) / √(1 - u²/c²) | x in [5, 10], u in [1, 2], c in [3, 20], t in [1, 2] |
| `feynman-I.26.2` | arcsin(n sin θ2) | n in [0, 1], theta2 in [1, 5] |
| `feynman-I.29.16` | √(x1² + x2² - 2 x1 x2 cos(θ1 - θ2)) | x1, x2, theta1, theta2 in [1, 5] |
| `feynman-I.30.3` | Int_0 sin²(nθ/2) / sin²(θ/2) | Int_0, theta, n in [1, 5] |
| `feynman-I.37.4` | I1 + I2 + 2 √(I1 I2) cos δ | I1, I2, delta in [1, 5] |
| `feynman-I.50.26` | x1 (cos ωt + α cos² ωt) | x1, omega, t, alpha in [1, 3] |
| `feynman-II.6.15a` | p_d/(4π ε) · 3z/r⁵ · √(x² + y²) | epsilon, p_d, r, x, y, z in [1, 3] |
| `feynman-II.35.18` | n_0 / (exp(μB/(k_b T)) + exp(-μB/(k_b T))) | n_0, kb, T, mom, B in [1, 5] |
| `feynman-III.9.52` | (p_d Ef t/ħ) sin²((ω-ω0)t/2) / ((ω-ω0)t/2)² | p_d, Ef, t, h in [1, 3]; omega, omega_0 in [1, 5] |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from mlplab.data.synthetic.functions import Function, Ranges, same

PI = np.pi


def _sph_harm_real(n: int, m: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    norm = math.sqrt((2 * n + 1) / (4 * PI) * math.factorial(n - m) / math.factorial(n + m))
    return lambda phi, theta: norm * special.lpmv(m, n, np.cos(theta)) * np.cos(m * phi)


def _sq_sinc(a: np.ndarray) -> np.ndarray:
    """sin²(a)/a², 1 at a = 0."""
    return np.sinc(a / PI) ** 2


def _kan_100d(*x: np.ndarray) -> np.ndarray:
    return np.exp(np.mean(np.sin(PI * np.stack(x) / 2) ** 2, axis=0))


def _legendre(m: int) -> Function:
    return Function(lambda x, y: special.lpmv(m, x, y), {"x": (0.0, 4.0), "y": (-0.9, 0.9)},
                    f"associated Legendre function P_x^{m}(y) (scipy.special.lpmv, m={m})")


def _sph(n: int, m: int) -> Function:
    ranges: Ranges = {"phi": (0.0, 2 * PI), "theta": (0.0, PI)}
    return Function(_sph_harm_real(n, m), ranges,
                    f"spherical harmonic Re Y_{n}^{m}(theta, phi) (polar theta, azimuth phi)")


FORMULAS: dict[str, Function] = {
    "kan-hello": Function(lambda x, y: np.exp(np.sin(PI * x) + y**2), same("x y", -1, 1),
                          "KAN paper's hello formula exp(sin(πx) + y²)"),
    "kan-j0": Function(lambda x: special.j0(20 * x), same("x", -1, 1),
                       "KAN paper's Bessel toy J0(20x)"),
    "kan-xy": Function(lambda x, y: x * y, same("x y", -1, 1), "KAN paper's product toy x·y"),
    "kan-4d": Function(lambda x1, x2, x3, x4: np.exp(
        0.5 * (np.sin(PI * (x1**2 + x2**2)) + np.sin(PI * (x3**2 + x4**2)))),
        same("x1 x2 x3 x4", -1, 1), "KAN paper's 4-d toy exp(½(sin(π(x1²+x2²)) + sin(π(x3²+x4²))))"),
    "kan-100d": Function(_kan_100d, same(" ".join(f"x{i}" for i in range(1, 101)), -1, 1),
                         "KAN paper's 100-d toy exp(1/100 Σ sin²(πx_i/2))"),
    "ellipj": Function(lambda x, y: special.ellipj(x, y)[0], {"x": (-1.0, 1.0), "y": (0.0, 1.0)},
                       "Jacobi elliptic function sn(x | y) (scipy.special.ellipj)"),
    "ellipkinc": Function(special.ellipkinc, {"x": (-1.0, 1.0), "y": (0.0, 1.0)},
                          "incomplete elliptic integral of the first kind F(x | y)"),
    "ellipeinc": Function(special.ellipeinc, {"x": (-1.0, 1.0), "y": (0.0, 1.0)},
                          "incomplete elliptic integral of the second kind E(x | y)"),
    "ellipk": Function(special.ellipk, same("x", 0, 0.95),
                       "complete elliptic integral of the first kind K(x)"),
    "ellipe": Function(special.ellipe, same("x", 0, 1),
                       "complete elliptic integral of the second kind E(x)"),
    "bessel-j0": Function(special.j0, same("x", 0, 20), "Bessel function of the first kind J0(x)"),
    "bessel-j1": Function(special.j1, same("x", 0, 20), "Bessel function of the first kind J1(x)"),
    "bessel-y0": Function(special.y0, same("x", 1, 20),
                          "Bessel function of the second kind Y0(x)"),
    "bessel-jv": Function(special.jv, {"x": (0.0, 2.0), "y": (0.0, 10.0)},
                          "Bessel function of the first kind J_x(y), real order x"),
    "bessel-kv": Function(special.kv, {"x": (0.0, 2.0), "y": (0.5, 5.0)},
                          "modified Bessel function of the second kind K_x(y)"),
    "lpmv-m0": _legendre(0),
    "lpmv-m1": _legendre(1),
    "lpmv-m2": _legendre(2),
    "sph-harm-n1m1": _sph(1, 1),
    "sph-harm-n2m1": _sph(2, 1),
    "sph-harm-n2m2": _sph(2, 2),
    "feynman-I.6.2": Function(
        lambda sigma, theta: np.exp(-((theta / sigma) ** 2) / 2) / (math.sqrt(2 * PI) * sigma),
        same("sigma theta", 1, 3), "Feynman I.6.2 gaussian exp(-(θ/σ)²/2)/(√(2π)σ)"),
    "feynman-I.6.2b": Function(
        lambda sigma, theta, theta1: np.exp(-(((theta - theta1) / sigma) ** 2) / 2)
        / (math.sqrt(2 * PI) * sigma),
        same("sigma theta theta1", 1, 3), "Feynman I.6.2b shifted gaussian"),
    "feynman-I.9.18": Function(
        lambda m1, m2, G, x1, x2, y1, y2, z1, z2: G * m1 * m2
        / ((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2),
        {**same("m1 m2 G", 1, 2), "x1": (3.0, 4.0), "x2": (1.0, 2.0), "y1": (3.0, 4.0),
         "y2": (1.0, 2.0), "z1": (3.0, 4.0), "z2": (1.0, 2.0)},
        "Feynman I.9.18 gravitation G m1 m2 / |r2 - r1|²"),
    "feynman-I.12.11": Function(lambda q, Ef, B, v, theta: q * (Ef + B * v * np.sin(theta)),
                                same("q Ef B v theta", 1, 5),
                                "Feynman I.12.11 Lorentz force q(Ef + B v sin θ)"),
    "feynman-I.13.12": Function(lambda m1, m2, r1, r2, G: G * m1 * m2 * (1 / r2 - 1 / r1),
                                same("m1 m2 r1 r2 G", 1, 5),
                                "Feynman I.13.12 gravitational potential energy G m1 m2 (1/r2 - 1/r1)"),
    "feynman-I.15.3x": Function(lambda x, u, c, t: (x - u * t) / np.sqrt(1 - u**2 / c**2),
                                {"x": (5.0, 10.0), "u": (1.0, 2.0), "c": (3.0, 20.0),
                                 "t": (1.0, 2.0)},
                                "Feynman I.15.3x Lorentz transformation (x - ut)/√(1 - u²/c²)"),
    "feynman-I.26.2": Function(lambda n, theta2: np.arcsin(n * np.sin(theta2)),
                               {"n": (0.0, 1.0), "theta2": (1.0, 5.0)},
                               "Feynman I.26.2 refraction arcsin(n sin θ2)"),
    "feynman-I.29.16": Function(
        lambda x1, x2, theta1, theta2: np.sqrt(x1**2 + x2**2
                                               - 2 * x1 * x2 * np.cos(theta1 - theta2)),
        same("x1 x2 theta1 theta2", 1, 5),
        "Feynman I.29.16 law of cosines √(x1² + x2² - 2 x1 x2 cos(θ1 - θ2))"),
    "feynman-I.30.3": Function(
        lambda Int_0, theta, n: Int_0 * np.sin(n * theta / 2) ** 2 / np.sin(theta / 2) ** 2,
        same("Int_0 theta n", 1, 5),
        "Feynman I.30.3 N-slit interference I0 sin²(nθ/2)/sin²(θ/2)"),
    "feynman-I.37.4": Function(lambda I1, I2, delta: I1 + I2 + 2 * np.sqrt(I1 * I2) * np.cos(delta),
                               same("I1 I2 delta", 1, 5),
                               "Feynman I.37.4 two-wave interference I1 + I2 + 2√(I1 I2) cos δ"),
    "feynman-I.50.26": Function(
        lambda x1, omega, t, alpha: x1 * (np.cos(omega * t) + alpha * np.cos(omega * t) ** 2),
        same("x1 omega t alpha", 1, 3),
        "Feynman I.50.26 anharmonic oscillation x1(cos ωt + α cos² ωt)"),
    "feynman-II.6.15a": Function(
        lambda epsilon, p_d, r, x, y, z: p_d / (4 * PI * epsilon) * 3 * z / r**5
        * np.sqrt(x**2 + y**2),
        same("epsilon p_d r x y z", 1, 3),
        "Feynman II.6.15a dipole field p_d/(4πε) 3z/r⁵ √(x² + y²)"),
    "feynman-II.35.18": Function(
        lambda n_0, kb, T, mom, B: n_0 / (np.exp(mom * B / (kb * T)) + np.exp(-mom * B / (kb * T))),
        same("n_0 kb T mom B", 1, 5),
        "Feynman II.35.18 two-level population n0/(exp(μB/kT) + exp(-μB/kT))"),
    "feynman-III.9.52": Function(
        lambda p_d, Ef, t, h, omega, omega_0: p_d * Ef * t / (h / (2 * PI))
        * _sq_sinc((omega - omega_0) * t / 2),
        {**same("p_d Ef t h", 1, 3), **same("omega omega_0", 1, 5)},
        "Feynman III.9.52 transition probability (p_d Ef t/ħ) sin²(Δωt/2)/(Δωt/2)²"),
}
