"""The HTTP service: settings and ``tweetcls serve`` (:mod:`.settings`, :mod:`.command`), model
loading (:mod:`.loading`), the app's wiring (:mod:`.app`), state and dependencies (:mod:`.state`,
:mod:`.deps`), routes (:mod:`.routes`), errors and limits (:mod:`.errors`, :mod:`.limits`),
request and response bodies (:mod:`.schemas`), the micro-batcher and metrics."""
