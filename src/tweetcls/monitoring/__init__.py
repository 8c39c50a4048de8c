"""Monitoring: the request log (:mod:`.requestlog`), drift against the training data
(:mod:`.drift`), ``tweetcls drift`` (:mod:`.command`) and the settings it shares with
``tweetcls serve`` (:mod:`.settings`)."""
