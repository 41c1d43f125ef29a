package org.coachsync

import java.nio.file.Files
import java.nio.file.Path
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.io.TempDir

/**
 * Temp dirs, and the servers, devices and subscriptions a test opens: all released at
 * teardown, servers killed. Every wait inside a test is bounded; the class timeout is
 * the backstop.
 */
@Timeout(180)
abstract class DeviceTestBase {
    @TempDir
    lateinit var tmp: Path

    private val servers = mutableListOf<ServerProcess>()
    private val devices = mutableListOf<Device>()
    private val subscriptions = mutableListOf<Subscription>()

    fun dir(name: String): Path = Files.createDirectories(tmp.resolve(name))

    /** Start the real server with its data in `tmp/server` (0: any free port). */
    fun startServer(port: Int = 0): ServerProcess =
        ServerProcess.start(dir("server"), port).also { servers += it }

    fun openDevice(name: String, server: String?): Device =
        Device(dir(name).toString(), server).also { devices += it }

    fun <S : Subscription> track(subscription: S): S = subscription.also { subscriptions += it }

    @AfterEach
    fun release() {
        subscriptions.forEach { it.cancel(); it.destroy() }
        // shutdown() finishes every write and releases the directory; destroy() then
        // drops the Rust object.
        devices.forEach {
            runCatching { it.shutdown() }
            it.destroy()
        }
        servers.forEach { it.close() }
    }
}
