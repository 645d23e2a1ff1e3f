"""A generic stock-and-flow engine, independent of the Beijing model.

Stocks are numpy arrays with a leading batch (run) axis and any further axes
(region, sector, delay stage). A model is a derivative function over a dict of
named stocks; the engine steps it with Euler or RK4 and records chosen
variables at chosen output times. Many parameter sets integrate together as
one array: nothing in here loops over runs, regions or sectors.
"""

from sim.engine.delays import material_delay, smooth
from sim.engine.integrate import INTEGRATORS, Derivative, State, integrate, step
from sim.engine.lookup import Lookup

__all__ = [
    "INTEGRATORS",
    "Derivative",
    "Lookup",
    "State",
    "integrate",
    "material_delay",
    "smooth",
    "step",
]
