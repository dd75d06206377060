import Dispatch
import Foundation
import Logging
import Platform
import ServiceLifecycle
import Testing

/// Records what happened, in order, from any thread.
final class Trace: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [String] = []
    func add(_ event: String) { lock.lock(); events.append(event); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return events }
}

@Suite("Daemon services (swift-service-lifecycle)")
struct ServicesTests {
    /// `running` is signalled once the pipeline's thread runs.
    func group(_ trace: Trace, running: DispatchSemaphore) -> ServiceGroup {
        let stopPipeline = DispatchSemaphore(value: 0)
        let services: [Service] = [
            ThreadService("indicators", start: { trace.add("start indicators") }, stop: { trace.add("stop indicators") }),
            ThreadService("socket", start: { trace.add("start socket") }, stop: { trace.add("stop socket") }),
            PipelineService(run: {
                trace.add("pipeline runs")
                running.signal()
                stopPipeline.wait()
                trace.add("pipeline sealed")
            }, shutdown: {
                trace.add("pipeline asked to stop")
                stopPipeline.signal()
            }),
        ]
        return ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) },
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
    }

    @Test("a graceful shutdown stops the pipeline first (it seals), then the others in reverse order of start")
    func gracefulOrder() async throws {
        let trace = Trace()
        let running = DispatchSemaphore(value: 0)
        let group = group(trace, running: running)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await offPool { running.wait() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let events = trace.all
        #expect(Array(events.suffix(4)) == ["pipeline asked to stop", "pipeline sealed", "stop socket", "stop indicators"], "\(events)")
    }

    @Test("a pipeline that ends by itself (a system stop, a power-off) shuts the group down in order")
    func pipelineEndsGroup() async throws {
        let trace = Trace()
        let stop = DispatchSemaphore(value: 0)
        let running = DispatchSemaphore(value: 0)
        let services: [Service] = [
            ThreadService("indicators", stop: { trace.add("stop indicators") }),
            ThreadService("socket", stop: { trace.add("stop socket") }),
            PipelineService(run: {
                trace.add("pipeline runs")
                running.signal()
                stop.wait()
                trace.add("pipeline ended")
            }, shutdown: { trace.add("pipeline asked to stop") }),
        ]
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) },
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await offPool { running.wait() }
            stop.signal()  // the pipeline ends by itself, as on a system stop
            try await tasks.waitForAll()
        }
        let events = trace.all
        #expect(events.first == "pipeline runs" && events.dropFirst().first == "pipeline ended" && Array(events.suffix(2)) == ["stop socket", "stop indicators"], "\(events)")
    }
}
