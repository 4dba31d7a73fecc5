package matrix

// Every upstream and hop kind registers itself by name; the matrix offers them all.
import (
	_ "github.com/idlerace/idlerace/attack/agent" // client kinds: real libraries as strategies
	_ "github.com/idlerace/idlerace/hops/apache"
	_ "github.com/idlerace/idlerace/hops/caddy" // reverse proxies in front of the upstream
	_ "github.com/idlerace/idlerace/hops/haproxy"
	_ "github.com/idlerace/idlerace/hops/hyper"
	_ "github.com/idlerace/idlerace/hops/nginx"
	_ "github.com/idlerace/idlerace/upstreams/builtin"
	_ "github.com/idlerace/idlerace/upstreams/gonet"
	_ "github.com/idlerace/idlerace/upstreams/nginx"
	_ "github.com/idlerace/idlerace/upstreams/node"
	_ "github.com/idlerace/idlerace/upstreams/uvicorn"
)
