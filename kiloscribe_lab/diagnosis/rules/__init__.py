"""The rule families, one module each; ``kiloscribe_lab.diagnosis`` names them and builds the
registry from the ``@rule`` functions each defines (importing a module registers nothing).

    availability  all-backends-down, backend-down, backend-timeout, dns-problem, tls-problem
    protocol      not-socketio, engineio-version-mismatch
    auth          auth-rejected, auth-path-healthy
    transport     websocket-blocked, sticky-sessions-missing, sticky-sessions-cookie-only,
                  network-timeouts
    discovery     discovery-problem
    expected      plain-websocket-protocol-mismatch, root-redirect (info: not faults)
    sdk           sdk-runtime-missing-websocket, sdk-fallback-not-effective
"""
