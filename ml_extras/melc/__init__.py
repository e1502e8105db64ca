"""Fast MELC (Jozefowicz & Czarnecki 2015): Cauchy-Schwarz divergence of class KDEs along w."""
