<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: customer registered and changed.
 */

namespace XLite\Module\CommerceSync\Webhooks\Model;

use XLite\Module\CommerceSync\Webhooks\Core\Outbox;

/**
 * Doctrine lifecycle callbacks of XLite\Model\Profile (X-Cart 5.3.2
 * classes/XLite/Model/Profile.php is @HasLifecycleCallbacks with @PrePersist
 * prepareBeforeCreate and @PreUpdate prepareBeforeUpdate; XC\MailChimp's Profile and
 * Product decorators add callbacks the same way).
 */
abstract class Profile extends \XLite\Model\Profile implements \XLite\Base\IDecorator
{
    /**
     * The fields whose change is a customer change for the sync. A login stamps
     * `last_login` and friends on every sign-in; those are not changes.
     *
     * @var string[]
     */
    protected static $commerceSyncFields = array('login', 'status', 'membership', 'anonymous');

    /**
     * Set in @PreUpdate, where the unit of work still has the change set; read in @PostUpdate.
     *
     * @var boolean
     */
    protected $commerceSyncChanged = false;

    /**
     * @return void
     *
     * @PostPersist
     */
    public function commerceSyncProfileCreated()
    {
        if ($this->isCommerceSyncCustomer()) {
            Outbox::record('customer.created', $this->getProfileId());
        }
    }

    /**
     * @return void
     *
     * @PreUpdate
     */
    public function prepareBeforeUpdate()
    {
        parent::prepareBeforeUpdate();

        $changes = \XLite\Core\Database::getEM()->getUnitOfWork()->getEntityChangeSet($this);
        $this->commerceSyncChanged = (bool) array_intersect_key(
            $changes,
            array_flip(static::$commerceSyncFields)
        );
    }

    /**
     * @return void
     *
     * @PostUpdate
     */
    public function commerceSyncProfileUpdated()
    {
        if ($this->commerceSyncChanged && $this->isCommerceSyncCustomer()) {
            Outbox::record('customer.updated', $this->getProfileId());
        }
        $this->commerceSyncChanged = false;
    }

    /**
     * A shopper's own profile: not the copy an order keeps of it (Profile::$order is set
     * on those), not a guest's (anonymous), not an administrator.
     *
     * @return boolean
     */
    public function isCommerceSyncCustomer()
    {
        return !$this->getOrder() && !$this->getAnonymous() && !$this->isAdmin();
    }
}
