"""The application and its tools, built on the :mod:`constructs_lib` library.

The configuration file (:mod:`sdaas.config`) and its mapping to construct props
(:mod:`sdaas.props`), the app builder ``main.py`` calls (:mod:`sdaas.app`), local mode
(:mod:`sdaas.local`), ``sdctl`` (:mod:`sdaas.cli`), preflight, the plan summary, model
upload, and the reference and cost generators. The library never imports this package.
"""
