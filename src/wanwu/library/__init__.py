"""The photo library: a SQLite catalogue of a photo collection's labels, kept up to date
incrementally (``wanwu index``), searched by class or group in English and Chinese
(``wanwu search``), summarised and exported (``wanwu library``), corrected by hand
(``wanwu tag``), mirrored into XMP sidecars, and browsed in ``wanwu serve --library``.

Modules: ``catalogue`` (schema, migrations, lock), ``walker`` (files and stats), ``indexer``
(incremental rules, batching, stop), ``backend`` (the swappable classify step; ``ray_backend``
runs it on a Ray cluster), ``xmp`` (sidecars), ``search``, ``usertags``, ``export``, ``names``
(labels/groups), ``thumbnails``, ``people`` and ``similar``. The commands are in ``wanwu.cli``
(``library``, ``people``, ``similar``) and the HTTP routes in ``wanwu.server``
(``library_routes``, ``people_routes``): they call this package, never the other way."""
