"""The Node.js toolchain both ``sdk`` and ``lab`` use: finding ``node`` and ``npm``, child
processes under our own deadline in their own process group (``subproc``), and npm installs
into our cache, locked, staged and bounded (``npm``). Imports only the pure core."""
