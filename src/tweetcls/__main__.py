"""``python -m tweetcls``."""

from tweetcls.cli import main

if __name__ == "__main__":
    main()
