"""websockets' asyncio implementation (``websockets.asyncio``): ``client``,
``server``, ``connection`` and ``router``."""
