"""A Jupyter server extension that serves plotly.js to kalab's live figures, so no kernel has to.

Loaded by every Jupyter server in the environment kalab is installed in (JupyterLab, Notebook 7,
Voila under ``/voila/render/``, a hub's single-user server): ``pip install`` puts
``etc/jupyter/jupyter_server_config.d/kalab.json`` next to the server's own configuration
(see pyproject.toml's data-files), which enables it.  It adds one route,
``{base_url}kalab/static/plotly.min.js``, serving the file the plotly Python package ships
(``plotly/package_data/plotly.min.js``; nothing is copied into kalab).  The live figures ask for it
with ``?v=<plotly version>``; tornado's ``StaticFileHandler`` answers a versioned request with a
ten-year ``Cache-Control`` and an ETag, so a browser fetches it once and then reuses it for every
figure, notebook and page (tornado.web.StaticFileHandler.get_cache_time).

Server extensions: https://jupyter-server.readthedocs.io/en/latest/developers/extensions.html
"""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "kalab.jupyter"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join
    from tornado.web import StaticFileHandler

    from .livefigure import STATIC_ROUTE, plotly_js_path

    try:
        path = plotly_js_path()
    except FileNotFoundError as e:   # the figures then ask the kernel, once per page
        serverapp.log.warning("kalab: %s; live figures will load plotly.js through the kernel", e)
        return
    web_app = serverapp.web_app
    directory, name = STATIC_ROUTE.rsplit("/", 1)
    route = url_path_join(web_app.settings["base_url"], directory, f"({name.replace('.', '[.]')})")
    web_app.add_handlers(".*$", [(route, StaticFileHandler, {"path": str(path.parent)})])
    serverapp.log.info("kalab: serving %s at %s", path, route)
