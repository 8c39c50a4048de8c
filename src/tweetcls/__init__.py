"""tweetcls: classify tweets as being about a real disaster or not."""

__version__ = "0.1.0"
