// Every gRPC service berthd serves; each registers itself when imported.
import './version.ts';
import './namespaces.ts';
import './introspection.ts';
import './leases.ts';
import './events.ts';
import './content.ts';
import './images.ts';
import './snapshots.ts';
import './containers.ts';
import './transfer.ts';
import './tasks.ts';
import './diff.ts';
import './health.ts';
import './policy.ts';
