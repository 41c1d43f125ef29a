package org.coachsync

import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/** The coachsync binary (`-Dcoachsync.bin`, set by the pom; `target/debug/coachsync` otherwise). */
val coachsyncBin: String =
    System.getProperty("coachsync.bin") ?: File("../../target/debug/coachsync").absolutePath

/** A minimal valid observation (docs/DOMAIN.md: title, setting, observedAt, script, status). */
const val MINIMAL_OBSERVATION =
    """{"title": "Room 12, grade 3 math", "setting": "classroom", "observedAt": 1773162300000, "script": [], "status": "draft"}"""

/** A free loopback port: bound, then released for the server to take. */
fun reservePort(): Int =
    ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }

fun syncUrl(port: Int) = "ws://127.0.0.1:$port/sync"

/**
 * The real server, `coachsync serve --listen 127.0.0.1:PORT --data-dir DIR`, started and
 * waited for until it logs `listening on ADDR`. [kill] is SIGKILL.
 */
class ServerProcess private constructor(
    private val process: Process,
    val port: Int,
    private val lines: MutableList<String>,
) : AutoCloseable {
    val syncUrl get() = syncUrl(port)

    /** SIGKILL (no chance to flush anything), and wait for the process to be gone. */
    fun kill() {
        process.destroyForcibly()
        check(process.waitFor(10, TimeUnit.SECONDS)) { "the server did not die within 10 s of SIGKILL" }
    }

    fun log(): String = synchronized(lines) { lines.joinToString("\n") }

    override fun close() {
        if (process.isAlive) kill()
    }

    companion object {
        /**
         * Start on [port] (0: any free one). A port that is still held (a server killed a
         * moment ago) is retried for up to 10 s.
         */
        fun start(dataDir: Path, port: Int = 0): ServerProcess {
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
            while (true) {
                try {
                    return startOnce(dataDir, port)
                } catch (e: IllegalStateException) {
                    if (port == 0 || System.nanoTime() > deadline || !e.message.orEmpty().contains("in use")) throw e
                    Thread.sleep(100)
                }
            }
        }

        private fun startOnce(dataDir: Path, port: Int): ServerProcess {
            val builder = ProcessBuilder(
                coachsyncBin, "serve", "--allow-anonymous", "--listen", "127.0.0.1:$port",
                "--data-dir", dataDir.toString(),
            )
            builder.environment()["COACHSYNC_LOG"] = "info"
            builder.redirectInput(ProcessBuilder.Redirect.from(File("/dev/null")))
            builder.redirectOutput(ProcessBuilder.Redirect.DISCARD)
            val process = builder.start()
            val lines = Collections.synchronizedList(mutableListOf<String>())
            val fresh = LinkedBlockingQueue<String>()
            // Drains stderr for the process's whole life, so the server never blocks on it.
            Thread {
                process.errorStream.bufferedReader().forEachLine {
                    lines.add(it)
                    fresh.add(it)
                }
                fresh.add(EOF)
            }.apply { isDaemon = true }.start()
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
            while (true) {
                val left = deadline - System.nanoTime()
                val line = if (left > 0) fresh.poll(left, TimeUnit.NANOSECONDS) else null
                if (line == null || line == EOF) {
                    process.destroyForcibly()
                    process.waitFor(10, TimeUnit.SECONDS)
                    throw IllegalStateException(
                        "the server ($coachsyncBin) did not start:\n" + synchronized(lines) { lines.joinToString("\n") },
                    )
                }
                val addr = line.substringAfter("listening on ", "").trim().substringBefore(' ')
                if (addr.isNotEmpty()) {
                    return ServerProcess(process, addr.substringAfterLast(':').toInt(), lines)
                }
            }
        }

        private const val EOF = "\u0000eof"
    }
}

/** Everything a listener was given, in order, and a bounded wait for what is to come. */
class Recorder<T> {
    private val lock = ReentrantLock()
    private val added = lock.newCondition()
    private val seen = mutableListOf<T>()

    fun add(item: T) = lock.withLock {
        seen.add(item)
        added.signalAll()
    }

    fun all(): List<T> = lock.withLock { seen.toList() }

    /**
     * Wait up to [timeoutMs] for an item that satisfies [predicate], among those from
     * index [from] on; return it.
     */
    fun await(what: String, timeoutMs: Long = 20_000, from: Int = 0, predicate: (T) -> Boolean): T {
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        lock.withLock {
            while (true) {
                seen.drop(from).firstOrNull(predicate)?.let { return it }
                val left = deadline - System.nanoTime()
                if (left <= 0) throw AssertionError("timed out after $timeoutMs ms waiting for $what; seen: $seen")
                added.awaitNanos(left)
            }
        }
    }
}

/** A document listener that records every JSON it gets. */
class JsonRecorder : DocumentListener {
    val values = Recorder<String>()
    override fun onChange(json: String) = values.add(json)
}

/** A status listener that records every status and connection state it gets. */
class StatusRecorder : StatusListener {
    val statuses = Recorder<Pair<String, SyncState>>()
    val connections = Recorder<ConnectionState>()
    override fun onStatus(url: String, status: DocStatus) = statuses.add(url to status.state)
    override fun onConnection(state: ConnectionState) = connections.add(state)
}

/**
 * Waits until every callback dispatched so far has been delivered: callbacks reach apps
 * in order on one thread, so once a new observer's first value arrives, everything
 * queued before it has been delivered too.
 */
fun drainCallbacks(device: Device, url: String) {
    val fence = JsonRecorder()
    val subscription = device.observe(url, fence)
    try {
        fence.values.await("the fence observer's first value", 10_000) { true }
    } finally {
        subscription.cancel()
        subscription.destroy()
    }
}
