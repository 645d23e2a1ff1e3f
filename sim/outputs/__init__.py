"""What is made from results: comparisons, figures for a paper, the HTML report, table exports.

Modules: ``style`` (names, fixed colours, fixed-layout figures), ``observed`` (calibration
targets, population series and plan levels to draw beside the model), ``sources`` (scenario
files, run folders and sweep folders as datasets), ``figures``, ``compare``, ``report``, ``export``.
Nothing here is imported by ``import sim``: matplotlib and xarray load on first use.
"""
