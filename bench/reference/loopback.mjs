// Preloaded (node --import) into the published sync server, which calls
// app.listen(PORT) without a host and so binds every interface: bind 127.0.0.1
// instead, and print the bound address (PORT=0 picks a free port, which the server's
// own "Listening on port 0" line would not tell). Nothing else is changed.
import net from "node:net"

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const portOnly =
    typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))
  if (portOnly && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1")
  }
  this.once("listening", () => {
    const a = this.address()
    if (a && typeof a === "object") console.error(`listening on ${a.address}:${a.port}`)
  })
  return listen.apply(this, args)
}
