"""The rule families, one module each; ``kiloscribe_lab.diagnosis`` names them and builds the
registry from the ``@rule`` functions each defines (importing a module registers nothing).

    availability  all-backends-down, backend-down, backend-timeout, dns-problem, tls-problem
    edge          cdn-challenge, rate-limited
    protocol      not-socketio, engineio-version-mismatch, malformed-handshake, redirect-loop
    auth          auth-rejected, auth-path-healthy
    application   inscription-not-acknowledged
    transport     upgrade-headers-dropped, websocket-blocked, polling-disabled, websocket-disabled,
                  sticky-sessions-missing, sticky-sessions-cookie-only, network-timeouts
    lifetime      idle-timeout, heartbeat-late, payload-too-large (from --deep's probes)
    cors          cors-origin-rejected
    discovery     discovery-problem
    expected      plain-websocket-protocol-mismatch, root-redirect (info: not faults)
    sdk           sdk-runtime-missing-websocket, sdk-fallback-not-effective
"""
